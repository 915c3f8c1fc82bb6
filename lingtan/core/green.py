"""Green-power purchases allocated to a window (docs/domain.md "Purchases for a period still running").

- A closed period (its end is past): evenly over its consumption, so a window gets
  purchase kWh × (its consumption inside the period) ÷ (the period's consumption).
- A period still running: in proportion to the time elapsed, so a window gets
  purchase kWh × (its time inside the period, up to now) ÷ (the period's whole length). Spreading
  it over the consumption so far would hand a year's purchase to January and call it 100 % green.

The allocation says which rule it used; once a period closes its windows are allocated by
consumption, so figures shown while it ran change then (the report says which applied).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from lingtan.core.site_model import SiteEnergyModel

Method = Literal["none", "consumption", "elapsed_time", "mixed"]


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


def local_start(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def allocate(model: SiteEnergyModel, a: datetime, b: datetime, now: datetime,
             consumption: Callable[[datetime, datetime], float]) -> GreenAllocation:
    tz = ZoneInfo(model.site.timezone)
    out = GreenAllocation()
    for p in model.purchases:
        ps, pe = local_start(p.period_start, tz), local_start(p.period_end, tz)
        label = f"{p.kind} {p.period_start} to {p.period_end} (exclusive)"
        if now < pe:  # the period is still running
            lo, hi = max(a, ps), min(b, pe, now)
            if lo >= hi:
                continue
            share = (hi - lo) / (pe - ps)
            method = "elapsed_time"
            note = (f"green purchase {label} is still running: allocated in proportion to the time elapsed "
                    "(window time inside the period up to now ÷ the period's length); once the period "
                    "closes it is spread over the period's consumption instead")
        else:
            lo, hi = max(a, ps), min(b, pe)
            if lo >= hi:
                continue
            period = consumption(ps, pe)
            if period <= 0:
                continue
            share = min(max(consumption(lo, hi), 0.0) / period, 1.0)
            method = "consumption"
            note = f"green purchase {label}: allocated evenly over the period's consumption"
        kwh = p.green_kwh * share
        out.purchases += 1
        out.methods.add(method)
        out.notes.append(note)
        if p.kind == "gec":
            out.gec_kwh += kwh
        else:
            out.trade_kwh += kwh
    return out
