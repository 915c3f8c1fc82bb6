"""The core's English sentences in the reader's language: a target's reason, the net balance's reason,
the zero-carbon factory's blockers, the evaluations' notes and methods.

The core writes these sentences once, in English, with its numbers already formatted (the API sends
the same text). The catalog's ``programme`` context holds each sentence's wording as the core writes
it, with ``{placeholders}`` where the core puts a value, and the Chinese beside it. A Chinese page
matches the core's sentence against those templates and fills the Chinese one with the very
substrings the core wrote, so every number shown is the core's; a sentence no template matches
(the core's wording changed) is shown as the core wrote it, never guessed at.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache

from dashboard.i18n import CATALOG, Lang
from lingtan.kernel.i18n import catalog

CONTEXT = "programme"
# Placeholders that hold a number the core formatted (digits first, then perhaps "%" or a unit):
# matching them as "starts with a digit" splits "2022 (latest year with data) 3,828 tCO2e" where
# the core joined its parts, not at the first space.
NUMERIC = {"value", "line", "projection", "target", "gap", "margin", "offsets", "net", "gross", "n", "x",
           "months", "pct", "drops", "he", "s2", "en2", "stars", "threshold", "year", "target_year"}
# Placeholders that hold a name the catalog translates (an indicator, a requirement)
NAMES = {"indicator", "name"}


@dataclass(frozen=True)
class Template:
    english: str
    pattern: re.Pattern[str]
    literal: int  # characters of fixed wording: the more, the more specific


def _pattern(english: str) -> re.Pattern[str]:
    parts: list[str] = []
    for literal, field, _, _ in string.Formatter().parse(english):
        parts.append(re.escape(literal))
        if field:
            # a number the core formatted never holds a bracket or a semicolon: a phrase that
            # does ("2022 (latest complete year; the last 12 months …)") is a label, not a value
            parts.append(rf"(?P<{field}>-?\d[^()（）;；]*?)" if field in NUMERIC else rf"(?P<{field}>.+?)")
    return re.compile("".join(parts), re.DOTALL)


@cache
def templates() -> tuple[Template, ...]:
    """Every template of the ``programme`` context, the most specific first (an at-risk reason is
    an on-track reason with more words after it)."""
    found = [Template(msgid, _pattern(msgid), sum(len(lit) for lit, *_ in string.Formatter().parse(msgid)))
             for ctx, msgid in catalog("en") if ctx == CONTEXT]
    return tuple(sorted(found, key=lambda tp: -tp.literal))


def match(text: str) -> tuple[str, dict[str, str]] | None:
    """(template, the substrings at its placeholders) of the core's ``text``; None if none fits."""
    for tp in templates():
        found = tp.pattern.fullmatch(text)
        if found:
            return tp.english, found.groupdict()
    return None


def name(key: str, lang: Lang) -> str:
    """An indicator or requirement name (``carbon_per_tce``) in ``lang``; itself when unknown."""
    entry = CATALOG.get(f"zc.indicator.{key}")
    return entry[0 if lang == "en" else 1] if entry else key


def says(text: str, lang: Lang) -> str:
    """The core's sentence ``text`` in ``lang``: itself in English, the catalog's Chinese where a
    template fits, and the core's own words where none does."""
    if lang == "en" or not text:
        return text
    found = match(text)
    if found is None:
        return text
    english, parts = found
    filled = {k: v if k in NUMERIC else name(v, lang) if k in NAMES else says(v, lang)
              for k, v in parts.items()}
    return catalog(lang)[(CONTEXT, english)].format(**filled)
