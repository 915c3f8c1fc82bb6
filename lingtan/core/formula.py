"""Virtual-meter formulas: a linear combination of meters, e.g. ``feeder-7 − feeder-7a + 0.5 × shared``.

A formula may add, subtract, multiply or divide by numbers, and use parentheses; it may not
multiply two meters together, because energy is summed bucket by bucket and only a linear
combination of counters has the same total whichever way it is summed (docs/domain.md,
"Metering structure"). Meter ids may contain ``-``, so a minus between two ids needs spaces
around it (``a - b``; ``a-b`` is the one id ``a-b``). ``−`` and ``×`` are accepted for ``-`` and ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Linear = dict[str, float]  # meter id → coefficient

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<id>[A-Za-z_][A-Za-z0-9_.:-]*)"
                    r"|(?P<op>[-+*/()]))")
_SYMBOLS = str.maketrans({"−": "-", "×": "*", "·": "*", "÷": "/", "（": "(", "）": ")"})


class FormulaError(ValueError):
    """A formula that does not parse or is not linear; the message says where."""


@dataclass(frozen=True)
class _Term:
    coef: float
    meters: Linear  # empty: a plain number


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos, text = [], 0, text.translate(_SYMBOLS)
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            raise FormulaError(f"unexpected {text[pos]!r} at character {pos + 1}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    return out


def parse(text: str) -> Linear:
    """The formula's meters and their coefficients (meters that cancel out are dropped)."""
    tokens = _tokens(text)
    if not tokens:
        raise FormulaError("empty formula")
    i = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> tuple[str, str, int]:
        nonlocal i
        tok = peek()
        if tok is None:
            raise FormulaError("the formula ends too early")
        i += 1
        return tok

    def add(a: _Term, b: _Term, sign: float) -> _Term:
        if bool(a.meters) != bool(b.meters) and (a.coef if not a.meters else b.coef):
            raise FormulaError("a constant added to a meter is not energy: only meters times numbers")
        meters = dict(a.meters)
        for m, c in b.meters.items():
            meters[m] = meters.get(m, 0.0) + sign * c
        return _Term(a.coef + sign * b.coef if not meters else 0.0, meters)

    def expr() -> _Term:
        term = product()
        while (tok := peek()) is not None and tok[1] in "+-" and tok[0] == "op":
            take()
            term = add(term, product(), 1.0 if tok[1] == "+" else -1.0)
        return term

    def product() -> _Term:
        term = unary()
        while (tok := peek()) is not None and tok[0] == "op" and tok[1] in "*/":
            take()
            right = unary()
            if tok[1] == "*":
                if term.meters and right.meters:
                    raise FormulaError(f"a meter times a meter at character {tok[2]} is not linear")
                term = _scale(right, term.coef) if not term.meters else _scale(term, right.coef)
            else:
                if right.meters:
                    raise FormulaError(f"dividing by a meter at character {tok[2]} is not linear")
                if right.coef == 0:
                    raise FormulaError(f"division by zero at character {tok[2]}")
                term = _scale(term, 1.0 / right.coef)
        return term

    def unary() -> _Term:
        tok = take()
        if tok[0] == "op" and tok[1] in "+-":
            inner = unary()
            return inner if tok[1] == "+" else _scale(inner, -1.0)
        if tok[0] == "num":
            return _Term(float(tok[1]), {})
        if tok[0] == "id":
            return _Term(0.0, {tok[1]: 1.0})
        if tok[1] == "(":
            inner = expr()
            close = take()
            if close[1] != ")":
                raise FormulaError(f"expected ')' at character {close[2]}")
            return inner
        raise FormulaError(f"unexpected {tok[1]!r} at character {tok[2]}")

    result = expr()
    rest = peek()
    if rest is not None:
        raise FormulaError(f"unexpected {rest[1]!r} at character {rest[2]}")
    if not result.meters:
        raise FormulaError("names no meter: a virtual meter is a combination of meters")
    kept = {m: c for m, c in result.meters.items() if abs(c) > 1e-12}
    if not kept:
        raise FormulaError("its meters cancel out: the formula is always 0")
    return kept


def _scale(term: _Term, k: float) -> _Term:
    return _Term(term.coef * k, {m: c * k for m, c in term.meters.items()})
