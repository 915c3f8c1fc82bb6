"""Green-power purchases allocated to a window (docs/domain.md, green-power ratio).

A purchase for a period is spread evenly over the period's grid-supplied consumption (the
consumption the site's own PV did not cover, ``amounts.Balance.grid_supplied_kwh``): every such
kWh of the period carries ``rate`` = purchase kWh ÷ the period's grid-supplied kWh of green
power. PV the site used itself is green already and cannot absorb a certificate, so spreading
over it would put purchased green power into sunny hours only to cap it away there.

Where purchases overlap, their rates add up, but green power cannot exceed the consumption it
covers: a rate sum above 1 is scaled down to 1, piece by piece between purchase boundaries.
The result is additive — a window's allocation is the sum of its sub-windows' — so a KPI
series summed over a window equals the window's figures.

While a period is still running, its grid-supplied consumption so far is the denominator, so
the whole purchase is always attributed to what has been consumed, and a closed period's total
is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

from api.services.site_model import SiteEnergyModel

# grid-supplied consumption (kWh) over [a, b)
Supplied = Callable[[datetime, datetime], float]


@dataclass
class GreenAllocation:
    trade_kwh: float = 0.0
    gec_kwh: float = 0.0
    purchases: int = 0

    @property
    def total_kwh(self) -> float:
        return self.trade_kwh + self.gec_kwh


@dataclass(frozen=True)
class Rate:
    """One purchase as green kWh per grid-supplied kWh over [start, end)."""

    start: datetime
    end: datetime  # the period's end, or now while it is still running
    kind: str
    per_kwh: float


def local_start(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def rates(model: SiteEnergyModel, now: datetime, supplied: Supplied) -> list[Rate]:
    """Each purchase's rate; a purchase whose period has had no grid-supplied consumption yet
    has nothing to spread over and is left out."""
    tz = ZoneInfo(model.site.timezone)
    out = []
    for p in model.purchases:
        a, b = local_start(p.period_start, tz), min(local_start(p.period_end, tz), now)
        if a >= b:
            continue
        kwh = supplied(a, b)
        if kwh > 0:
            out.append(Rate(a, b, p.kind, p.green_kwh / kwh))
    return out


def rate_at(rs: list[Rate], t: datetime) -> tuple[float, float]:
    """(trade, certificate) green kWh per grid-supplied kWh at instant ``t``, their sum at most 1."""
    trade = gec = 0.0
    for r in rs:
        if r.start <= t < r.end:
            if r.kind == "gec":
                gec += r.per_kwh
            else:
                trade += r.per_kwh
    total = trade + gec
    if total > 1.0:
        trade, gec = trade / total, gec / total
    return trade, gec


def allocate(rs: list[Rate], a: datetime, b: datetime, supplied: Supplied) -> GreenAllocation:
    """The green kWh of [a, b): cut at purchase boundaries, each piece's grid-supplied
    consumption × the rates in force over it."""
    cuts = sorted({a, b, *(t for r in rs for t in (r.start, r.end) if a < t < b)})
    out = GreenAllocation(purchases=sum(1 for r in rs if r.start < b and a < r.end))
    for lo, hi in pairwise(cuts):
        trade, gec = rate_at(rs, lo)
        if trade + gec == 0.0:
            continue
        kwh = max(supplied(lo, hi), 0.0)
        out.trade_kwh += trade * kwh
        out.gec_kwh += gec * kwh
    return out
