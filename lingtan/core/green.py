"""Green-power purchases allocated to a window (docs/domain.md, "Green power").

- A closed period (its end is past) is spread evenly over the period's grid-supplied consumption
  (the consumption the site's own PV did not cover, ``amounts.Balance.grid_supplied_kwh``): every
  such kWh of the period carries ``per_kwh`` = purchase kWh ÷ the period's grid-supplied kWh.
  PV the site used itself is green already and cannot absorb a certificate, so spreading over it
  would put purchased green power into sunny hours only to cap it away there.
- A period still running releases its purchase in proportion to the time elapsed: by ``now`` the
  share purchase kWh × (time elapsed ÷ the period's length) is allocated, spread evenly over the
  grid-supplied consumption so far. Spreading the whole purchase over the consumption so far
  would hand a year's purchase to January and call it 100 % green.

Green power cannot exceed the grid-supplied consumption it covers: where purchases overlap, the
piece's green kWh are scaled down to its grid-supplied kWh, piece by piece between purchase
boundaries. Both rules are a rate per grid-supplied kWh, so they are additive: a KPI series
summed over a window equals the window's figures. The allocation says which rule it used; once
a period closes its windows switch to the consumption rule, and a closed reporting period keeps
what it was closed with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from lingtan.core.site_model import SiteEnergyModel

Method = Literal["none", "consumption", "elapsed_time", "mixed"]

# grid-supplied consumption (kWh) over [a, b)
Supplied = Callable[[datetime, datetime], float]


@dataclass
class GreenAllocation:
    trade_kwh: float = 0.0
    gec_kwh: float = 0.0
    purchases: int = 0
    methods: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    @property
    def total_kwh(self) -> float:
        return self.trade_kwh + self.gec_kwh

    @property
    def method(self) -> Method:
        if not self.methods:
            return "none"
        return "mixed" if len(self.methods) > 1 else self.methods.copy().pop()  # type: ignore[return-value]


@dataclass(frozen=True)
class Rate:
    """One purchase as green kWh per grid-supplied kWh over [start, end)."""

    start: datetime
    end: datetime  # the period's end, or now while it is still running
    kind: str
    method: str  # "consumption" | "elapsed_time"
    per_kwh: float
    label: str = ""


def local_start(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def rates(model: SiteEnergyModel, now: datetime, supplied: Supplied) -> list[Rate]:
    """Each purchase's rate; a period without grid-supplied consumption (so far) has nothing to
    spread over and is left out."""
    tz = ZoneInfo(model.site.timezone)
    out = []
    for p in model.purchases:
        ps, pe = local_start(p.period_start, tz), local_start(p.period_end, tz)
        label = f"{p.kind} {p.period_start} to {p.period_end} (exclusive)"
        end = min(pe, now)
        if ps >= end:
            continue
        kwh = supplied(ps, end)
        if kwh <= 0:
            continue
        if now < pe:  # still running: the share of the purchase its elapsed time has earned
            released = p.green_kwh * (now - ps) / (pe - ps)
            out.append(Rate(ps, end, p.kind, "elapsed_time", released / kwh, label))
        else:
            out.append(Rate(ps, end, p.kind, "consumption", p.green_kwh / kwh, label))
    return out


_NOTES = {
    "elapsed_time": ("green purchase {label} is still running: the share of it the time elapsed has earned "
                     "(time so far ÷ the period's length) is spread over the grid-supplied consumption so "
                     "far; once the period closes the whole purchase is spread over the period's"),
    "consumption": "green purchase {label}: allocated evenly over the period's grid-supplied consumption",
}


def piece_kwh(rs: list[Rate], lo: datetime, supplied_kwh: float) -> tuple[float, float]:
    """(trade, certificate) green kWh of a piece starting at ``lo`` with ``supplied_kwh`` of
    grid-supplied consumption: the rates in force at ``lo``, their sum at most 1."""
    trade = sum(r.per_kwh for r in rs if r.start <= lo < r.end and r.kind != "gec")
    gec = sum(r.per_kwh for r in rs if r.start <= lo < r.end and r.kind == "gec")
    if trade + gec > 1.0:  # green power cannot exceed what it covers
        trade, gec = trade / (trade + gec), gec / (trade + gec)
    kwh = supplied_kwh if supplied_kwh > 0 else 0.0
    return trade * kwh, gec * kwh


def allocate(rs: list[Rate], a: datetime, b: datetime, supplied: Supplied) -> GreenAllocation:
    """The green kWh of [a, b), cut at purchase boundaries so each piece lies under one set of rates."""
    active = [r for r in rs if r.start < b and a < r.end]
    out = GreenAllocation(purchases=len(active))
    for r in active:
        out.methods.add(r.method)
        out.notes.append(_NOTES[r.method].format(label=r.label))
    cuts = sorted({a, b, *(t for r in active for t in (r.start, r.end) if a < t < b)})
    for lo, hi in pairwise(cuts):
        if not any(r.start <= lo < r.end for r in active):
            continue
        trade, gec = piece_kwh(active, lo, supplied(lo, hi))
        out.trade_kwh += trade
        out.gec_kwh += gec
    return out
