"""Normal cloud model (云模型, Li Deyi) for grading low-carbon KPIs (docs/domain.md, "Zero-carbon programme").

A normal cloud C(Ex, En, He) describes a qualitative concept ("grade II") by its expectation Ex,
its entropy En (how wide the concept is) and its hyper-entropy He (how uncertain that width is).

- Forward generator, i = 1..N: En'_i ~ N(En, He²), x_i ~ N(Ex, En'_i²),
  μ_i = exp(−(x_i − Ex)² / (2 En'_i²)). A drawn En'_i may be negative: only its square enters μ,
  and x_i is drawn with scale |En'_i| (a standard deviation is its magnitude).
- Backward generator from samples x_1..x_n (n ≥ 2): Ex = mean(x), En = √(π/2) · mean|x_i − Ex|,
  He = √(S² − En²) with S² the sample variance (ddof = 1). When S² < En² the samples are more
  concentrated than a normal cloud of that En allows and He is imaginary; it is then reported as
  0 with ``he_imaginary`` set and a note, never as √|S² − En²|, so a report can show it.
- A grade interval [Cmin, Cmax] is the grade cloud Ex = (Cmax + Cmin)/2, En = (Cmax − Cmin)/6 (the
  3En rule: the interval is Ex ± 3En), He a small constant, 0.02 by default (Sensors 2022,
  22(13):4663). He is in the indicator's own unit, as the intervals are.
- Certainty of a value x against grade cloud k: with no random generator, the deterministic
  μ = exp(−(x − Ex_k)² / (2 En_k²)) (He taken as 0); with one, the mean over ``drops`` drops of
  En' ~ N(En_k, He_k²) of exp(−(x − Ex_k)² / (2 En'²)).
- Grading: indicator j has weight w_j (the weights sum to 1), monthly (or other period) values
  whose backward cloud's Ex is its value x_j, and one interval per grade in its own unit; an
  indicator where lower is better simply lists its intervals in that order. U_k = Σ_j w_j μ_jk and
  the grade is argmax_k U_k; the shares U_k / ΣU are for display.

Choices the method leaves open:

- Open-ended edge grades ("≤ 0.2", "≥ 60 %") are written with ``None`` for the open end. Only the
  first and last grade may be open, and only on the side away from the other grades. The grade
  cloud is closed with the width of the neighbouring grade's interval (so (None, 0.2) next to
  (0.2, 0.5) becomes [−0.1, 0.2]), and certainty is 1 for any value beyond that cloud's Ex on the
  open side (a half cloud): a value far past the best limit is certainly in the best grade, not in
  no grade at all.
- Ties: among grades whose U equals the largest to a relative 1e-12, the first listed is taken
  (grades are listed best first, so a tie goes to the better grade), and a note says so.
- When every U is 0 (values far outside every closed grade), there is no grade: ``grade`` is None,
  the shares are 0 and a note says why.

Random draws take a ``numpy.random.Generator`` from the caller, never the global random state, so
a seeded grading is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
from numpy.typing import NDArray

DEFAULT_HE = 0.02
WEIGHT_TOLERANCE = 1e-9
TIE_RTOL = 1e-12

OpenSide = Literal["low", "high"]
Interval = tuple[float | None, float | None]


@dataclass(frozen=True)
class Cloud:
    ex: float
    en: float
    he: float

    def __post_init__(self) -> None:
        for name in ("ex", "en", "he"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"cloud {name} must be a finite number, got {getattr(self, name)!r}")
        if self.en < 0:
            raise ValueError(f"cloud en must be >= 0, got {self.en!r}")
        if self.he < 0:
            raise ValueError(f"cloud he must be >= 0, got {self.he!r}")


@dataclass(frozen=True)
class BackwardCloud:
    cloud: Cloud
    n: int
    # S² < En²: He would be imaginary, so cloud.he is 0 and ``note`` says so.
    he_imaginary: bool
    note: str | None


@dataclass(frozen=True)
class IndicatorInput:
    name: str
    values: Sequence[float]
    weight: float
    intervals: Sequence[Interval]


@dataclass(frozen=True)
class IndicatorGrade:
    name: str
    weight: float
    backward: BackwardCloud
    # The indicator's value x_j: the Ex of its backward cloud.
    value: float
    clouds: tuple[Cloud, ...]
    mu: tuple[float, ...]


@dataclass(frozen=True)
class CloudGrade:
    grades: tuple[str, ...]
    indicators: tuple[IndicatorGrade, ...]
    u: tuple[float, ...]
    shares: tuple[float, ...]
    grade: str | None
    # None: deterministic certainty (He = 0); otherwise the drops averaged per certainty.
    drops: int | None
    notes: tuple[str, ...]


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _mu(d2: NDArray[np.float64] | float, en: NDArray[np.float64]) -> NDArray[np.float64]:
    """exp(−d² / (2 En²)); a zero En is a spike: certainty 1 at the centre, 0 elsewhere."""
    en2 = np.square(en)
    d2 = np.broadcast_to(np.asarray(d2, dtype=float), en2.shape)
    out = np.where(d2 == 0.0, 1.0, 0.0)
    wide = en2 > 0.0
    out[wide] = np.exp(-d2[wide] / (2.0 * en2[wide]))
    return out


def backward(samples: Sequence[float]) -> BackwardCloud:
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"samples: the backward cloud needs at least 2 values, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must all be finite numbers")
    ex = float(np.mean(x))
    en = math.sqrt(math.pi / 2.0) * float(np.mean(np.abs(x - ex)))
    s2 = float(np.var(x, ddof=1))
    diff = s2 - en * en
    if diff < 0.0:
        note = (
            f"hyper-entropy is imaginary (S² = {s2:.6g} < En² = {en * en:.6g}): "
            "the values are more concentrated than a normal cloud allows; He reported as 0"
        )
        return BackwardCloud(Cloud(ex, en, 0.0), int(x.size), True, note)
    return BackwardCloud(Cloud(ex, en, math.sqrt(diff)), int(x.size), False, None)


def forward(
    cloud: Cloud, n: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """n cloud drops: their positions x and certainties μ, each μ in (0, 1]."""
    rng = _check_rng(rng)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    en_i = rng.normal(cloud.en, cloud.he, size=n)
    x = rng.normal(cloud.ex, np.abs(en_i))
    return x, _mu(np.square(x - cloud.ex), en_i)


def grade_cloud(
    lo: float | None, hi: float | None, he: float = DEFAULT_HE, *, open_width: float | None = None
) -> Cloud:
    """The grade cloud of [lo, hi]; an open end (None) is closed at ``open_width`` from the other."""
    if lo is None and hi is None:
        raise ValueError("a grade interval needs at least one end")
    if lo is None or hi is None:
        if open_width is None or not math.isfinite(open_width) or open_width <= 0:
            raise ValueError(f"open_width must be a positive number for an open interval, got {open_width!r}")
        if lo is None:
            assert hi is not None
            lo = hi - open_width
        else:
            hi = lo + open_width
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"grade interval ends must be finite, got [{lo!r}, {hi!r}]")
    if not lo < hi:
        raise ValueError(f"grade interval needs lo < hi, got [{lo!r}, {hi!r}]")
    return Cloud((hi + lo) / 2.0, (hi - lo) / 6.0, he)


def certainty(
    x: float,
    cloud: Cloud,
    rng: np.random.Generator | None = None,
    drops: int = 1000,
    *,
    open_side: OpenSide | None = None,
) -> float:
    """Certainty of x in the concept ``cloud``; deterministic (He taken as 0) when rng is None.

    ``open_side`` makes it a half cloud: certainty 1 for x at or beyond Ex on that side.
    """
    if not math.isfinite(x):
        raise ValueError(f"x must be a finite number, got {x!r}")
    if (open_side == "low" and x <= cloud.ex) or (open_side == "high" and x >= cloud.ex):
        return 1.0
    d2 = (x - cloud.ex) ** 2
    if rng is None:
        return float(_mu(d2, np.asarray(cloud.en, dtype=float)))
    rng = _check_rng(rng)
    if drops < 1:
        raise ValueError(f"drops must be >= 1, got {drops}")
    en_i = rng.normal(cloud.en, cloud.he, size=drops)
    return float(np.mean(_mu(d2, en_i)))


def _indicator_clouds(
    ind: IndicatorInput, grades: Sequence[str], he: float
) -> list[tuple[Cloud, OpenSide | None]]:
    """Each grade's cloud for one indicator, and the open side of an open-ended edge grade."""
    name = ind.name
    if len(ind.intervals) != len(grades):
        raise ValueError(
            f"indicator {name!r}: {len(ind.intervals)} grade intervals for {len(grades)} grades; "
            "it needs one interval per grade"
        )
    last = len(grades) - 1
    for k, (lo, hi) in enumerate(ind.intervals):
        where = f"indicator {name!r}, grade {grades[k]!r}"
        if lo is None and hi is None:
            raise ValueError(f"{where}: the interval has no end")
        if (lo is None or hi is None) and k not in (0, last):
            raise ValueError(f"{where}: only the first and last grade may be open-ended")
        for end in (lo, hi):
            if end is not None and not math.isfinite(end):
                raise ValueError(f"{where}: interval ends must be finite numbers, got [{lo!r}, {hi!r}]")
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"{where}: the interval needs lo < hi, got [{lo!r}, {hi!r}]")

    out: list[tuple[Cloud, OpenSide | None]] = []
    for k, (lo, hi) in enumerate(ind.intervals):
        if lo is not None and hi is not None:
            out.append((grade_cloud(lo, hi, he), None))
            continue
        where = f"indicator {name!r}, grade {grades[k]!r}"
        j = 1 if k == 0 else last - 1
        nlo, nhi = ind.intervals[j]
        if nlo is None or nhi is None:
            raise ValueError(
                f"{where}: an open end is closed with the neighbouring grade's width, "
                f"but grade {grades[j]!r} is open too"
            )
        side: OpenSide = "low" if lo is None else "high"
        closed_end = hi if lo is None else lo
        assert closed_end is not None
        mid = (nlo + nhi) / 2.0
        if (side == "low" and mid <= closed_end) or (side == "high" and mid >= closed_end):
            raise ValueError(
                f"{where}: open {'below' if side == 'low' else 'above'}, towards grade {grades[j]!r}; "
                "an open end must point away from the other grades"
            )
        out.append((grade_cloud(lo, hi, he, open_width=nhi - nlo), side))

    ex = [c.ex for c, _ in out]
    steps = [b - a for a, b in pairwise(ex)]
    if not (all(s > 0 for s in steps) or all(s < 0 for s in steps)):
        raise ValueError(f"indicator {name!r}: grade intervals must be listed in order (up or down)")
    return out


def _inside(x: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or lo <= x) and (hi is None or x <= hi)


def grade(
    indicators: Sequence[IndicatorInput],
    grades: Sequence[str],
    he: float = DEFAULT_HE,
    rng: np.random.Generator | None = None,
    drops: int = 1000,
) -> CloudGrade:
    """Grade weighted indicators against per-indicator grade intervals (method in the module doc)."""
    grades = tuple(grades)
    if len(grades) < 2:
        raise ValueError(f"grades: at least 2 grades are needed, got {len(grades)}")
    if len(set(grades)) != len(grades):
        raise ValueError(f"grades must be distinct, got {grades!r}")
    if not indicators:
        raise ValueError("indicators: at least one indicator is needed")
    if not (math.isfinite(he) and he >= 0):
        raise ValueError(f"he must be a number >= 0, got {he!r}")
    if rng is not None:
        rng = _check_rng(rng)
        if drops < 1:
            raise ValueError(f"drops must be >= 1, got {drops}")
    names = [ind.name for ind in indicators]
    if len(set(names)) != len(names):
        raise ValueError(f"indicator names must be distinct, got {names!r}")
    for ind in indicators:
        if not (math.isfinite(ind.weight) and ind.weight >= 0):
            raise ValueError(f"indicator {ind.name!r}: weight must be a number >= 0, got {ind.weight!r}")
    total = math.fsum(ind.weight for ind in indicators)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        listed = ", ".join(f"{ind.name}={ind.weight:g}" for ind in indicators)
        raise ValueError(f"indicator weights must sum to 1, got {total:.12g} ({listed})")

    notes: list[str] = []
    results: list[IndicatorGrade] = []
    for ind in indicators:
        if len(ind.values) < 2:
            raise ValueError(f"indicator {ind.name!r}: at least 2 values are needed, got {len(ind.values)}")
        clouds = _indicator_clouds(ind, grades, he)
        try:
            bc = backward(ind.values)
        except ValueError as exc:
            raise ValueError(f"indicator {ind.name!r}: {exc}") from None
        if bc.note is not None:
            notes.append(f"{ind.name}: {bc.note}")
        x = bc.cloud.ex
        if not any(_inside(x, lo, hi) for lo, hi in ind.intervals):
            notes.append(f"{ind.name}: value {x:.6g} lies in no grade interval")
        mu = tuple(certainty(x, c, rng, drops, open_side=side) for c, side in clouds)
        results.append(IndicatorGrade(ind.name, ind.weight, bc, x, tuple(c for c, _ in clouds), mu))

    u = tuple(math.fsum(r.weight * r.mu[k] for r in results) for k in range(len(grades)))
    u_sum = math.fsum(u)
    chosen: str | None
    if u_sum > 0.0:
        shares = tuple(v / u_sum for v in u)
        top = max(u)
        tied = [k for k, v in enumerate(u) if math.isclose(v, top, rel_tol=TIE_RTOL, abs_tol=0.0)]
        chosen = grades[tied[0]]
        if len(tied) > 1:
            notes.append(
                f"U ties between grades {', '.join(grades[k] for k in tied)}; "
                f"the first listed, {chosen}, is taken"
            )
    else:
        shares = tuple(0.0 for _ in u)
        chosen = None
        notes.append("every grade's U is 0: the values lie far outside every grade, so there is no grade")
    return CloudGrade(grades, tuple(results), u, shares, chosen, None if rng is None else drops, tuple(notes))
