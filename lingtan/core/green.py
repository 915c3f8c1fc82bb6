"""Green-power purchases allocated to a window (DOMAIN.md: evenly over the period's consumption).

A purchase for a period is spread in proportion to consumption: a window gets
purchase kWh × (its consumption inside the period) ÷ (the period's consumption). While a
period is still running, its consumption so far is the denominator, so the whole purchase is
always attributed to what has been consumed, and a closed period's total is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from lingtan.core.site_model import SiteEnergyModel


@dataclass
class GreenAllocation:
    trade_kwh: float = 0.0
    gec_kwh: float = 0.0
    purchases: int = 0

    @property
    def total_kwh(self) -> float:
        return self.trade_kwh + self.gec_kwh


def local_start(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def allocate(model: SiteEnergyModel, a: datetime, b: datetime, now: datetime,
             consumption: Callable[[datetime, datetime], float]) -> GreenAllocation:
    tz = ZoneInfo(model.site.timezone)
    out = GreenAllocation()
    for p in model.purchases:
        ps, pe = local_start(p.period_start, tz), min(local_start(p.period_end, tz), now)
        lo, hi = max(a, ps), min(b, pe)
        if lo >= hi:
            continue
        period = consumption(ps, pe)
        if period <= 0:
            continue
        share = max(consumption(lo, hi), 0.0) / period
        kwh = p.green_kwh * min(share, 1.0)
        out.purchases += 1
        if p.kind == "gec":
            out.gec_kwh += kwh
        else:
            out.trade_kwh += kwh
    return out
