"""KPI time series at a chosen resolution, from counter rollups.

A bucket with no counter data is absent from the rollups and appears here with null figures
and coverage 0, never as zero energy.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field

from api.factors import factor
from api.services.amounts import consumption
from api.services.energy import counter_series
from api.services.green import local_start
from api.services.site_model import SiteEnergyModel, load_site_model
from lingtan.rollups import ORIGIN, floor_time

Resolution = Literal["15m", "1h", "1d", "1mo"]
WIDTH = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


@dataclass
class KpiPoint:
    time: datetime
    grid_import_kwh: float | None
    grid_export_kwh: float | None
    pv_kwh: float | None
    consumption_kwh: float | None
    green_kwh: Annotated[float | None, Field(description="PV self-consumed + allocated green purchases")]
    green_power_ratio: float | None
    gas_m3: float | None
    scope1_t: float | None
    scope2_location_t: float | None
    scope2_market_t: float | None
    intensity_location_kg_per_kwh: float | None
    production: float | None
    coverage: Annotated[float, Field(description="share of the bucket's electricity meter-time with data")]
    unplaced_kwh: Annotated[float, Field(description=(
        "consumption the counters counted across a gap (or reset) that ended in this bucket: real, "
        "but not placed in time, so not in this bucket's figures; the window totals include it"))] = 0.0


@dataclass
class KpiSeries:
    site_id: str
    resolution: str
    timezone: str
    points: list[KpiPoint]


def _buckets(start: datetime, end: datetime, resolution: str, tz: ZoneInfo) -> list[datetime]:
    if resolution == "1mo":
        local = start.astimezone(tz)
        t = datetime(local.year, local.month, 1, tzinfo=tz)
        out = []
        while t.astimezone(UTC) < end:
            out.append(t.astimezone(UTC))
            t = (t + timedelta(days=32)).replace(day=1)
        return out
    width = WIDTH[resolution]
    t = floor_time(start, width) if resolution != "1d" else _local_midnight(start, tz)
    out = []
    while t < end:
        out.append(t)
        t = t + width if resolution != "1d" else _local_midnight(t + timedelta(hours=25), tz)
    return out


def _local_midnight(t: datetime, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _aligned(tz: ZoneInfo, start: datetime) -> bool:
    """Rollup days start at UTC+8 midnight: usable as local days only in such a zone."""
    return start.astimezone(tz).utcoffset() == ORIGIN.utcoffset()


def kpi_series(conn: sa.Connection, site_id: str, start: datetime, end: datetime,
               resolution: Resolution = "1h", now: datetime | None = None) -> KpiSeries:
    now = now or datetime.now(UTC)
    model = load_site_model(conn, site_id)
    tz = ZoneInfo(model.site.timezone)
    buckets = _buckets(start, end, resolution, tz)
    # Local days and months are sums of rollup days (UTC+8 zones) or hours (anywhere else).
    source = resolution if resolution in ("15m", "1h") else ("1d" if _aligned(tz, start) else "1h")
    q_start = buckets[0] if buckets else start
    starts = set(buckets)

    def series(role_meters: list[str], quantity: str) -> dict[datetime, tuple[float, float, float]]:
        """bucket -> (energy placed in it, covered seconds, energy counted across a gap ending in it)"""
        out: dict[datetime, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for t, delta, covered, gap in counter_series(conn, role_meters, quantity, q_start, end, source):
            # rollup buckets are the series' own buckets at 15m and 1h: a set lookup, no search
            key = t if t in starts else _bucket_of(t, buckets)
            if key is not None:
                out[key][0] += delta
                out[key][1] += covered
                out[key][2] += gap
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    ids = lambda role: [m.id for m in model.meters_with_role(role)]  # noqa: E731
    grid, pv = ids("grid_import"), ids("pv_generation")
    imp = series(grid, "active_energy_import")
    exp = series(grid + ids("grid_export"), "active_energy_export")
    gen = series(pv, "active_energy_export")
    gas_meters = [m.id for m in model.meters_with_role("boiler_fuel")
                  if (m.params.fuel or model.params.boiler_fuel) == "natural_gas"]
    gas = series(gas_meters, "gas_volume")
    prod = series(ids("production"), "production_count")
    purchases = _purchase_rates(conn, model, now)
    factors: dict[int, YearFactors] = {}
    points = []
    for i, b in enumerate(buckets):
        b_end = buckets[i + 1] if i + 1 < len(buckets) else _next(b, resolution, tz)
        seconds = (min(b_end, end) - max(b, start)).total_seconds()
        meters = len(grid) + len(pv)
        covered = sum(d.get(b, (0.0, 0.0))[1] for d in (imp, gen))
        coverage = min(covered / (seconds * meters), 1.0) if meters and seconds > 0 else 0.0
        year = b.astimezone(tz).year
        if year not in factors:
            factors[year] = _year_factors(model, year)
        points.append(_point(factors[year], b, imp, exp, gen, gas, prod, purchases, coverage, bool(pv)))
    return KpiSeries(site_id, resolution, model.site.timezone, points)


def _next(b: datetime, resolution: str, tz: ZoneInfo) -> datetime:
    if resolution == "1mo":
        local = b.astimezone(tz)
        return (local + timedelta(days=32)).replace(day=1).astimezone(UTC)
    if resolution == "1d":
        return _local_midnight(b + timedelta(hours=25), tz)
    return b + WIDTH[resolution]


def _bucket_of(t: datetime, buckets: list[datetime]) -> datetime | None:
    i = bisect_right(buckets, t) - 1
    return buckets[i] if i >= 0 else None


def _purchase_rates(conn: sa.Connection, model: SiteEnergyModel, now: datetime
                    ) -> list[tuple[datetime, datetime, float]]:
    """(period start, end, green kWh per kWh consumed) for each purchase."""
    tz = ZoneInfo(model.site.timezone)
    out = []
    for p in model.purchases:
        a, b = local_start(p.period_start, tz), min(local_start(p.period_end, tz), now)
        if a >= b:
            continue
        cons = consumption(conn, model, a, b)
        if cons > 0:
            out.append((a, local_start(p.period_end, tz), p.green_kwh / cons))
    return out


@dataclass(frozen=True)
class YearFactors:
    """The factors a point needs, looked up once per calendar year of the series."""

    gas_t_per_1e4_m3: float   # tCO2/10⁴Nm³
    grid_kg_per_kwh: float
    residual_kg_per_kwh: float


def _year_factors(model: SiteEnergyModel, year: int) -> YearFactors:
    overrides, fs = model.overrides_for(year), model.factor_set
    return YearFactors(factor(fs, "co2", "natural_gas", year, overrides).value,
                       factor(fs, "grid", model.site.grid_region, year, overrides).value,
                       factor(fs, "grid_residual", "national", year, overrides).value)


def _point(f: YearFactors, b: datetime, imp: dict, exp: dict, gen: dict, gas: dict, prod: dict,
           purchases: list[tuple[datetime, datetime, float]], coverage: float, has_pv: bool) -> KpiPoint:
    gas_m3 = gas[b][0] if b in gas else None
    scope1 = None if gas_m3 is None else gas_m3 * f.gas_t_per_1e4_m3 / 1e4
    units = prod[b][0] if b in prod else None
    i = imp[b][0] if b in imp else None
    s2_loc = None if i is None else i * f.grid_kg_per_kwh / 1000
    e = exp[b][0] if b in exp else 0.0
    g = (gen[b][0] if b in gen else None) if has_pv else 0.0  # a site without PV has 0 of it
    if i is None or g is None:  # a meter without data in the bucket: a gap, not zero
        return KpiPoint(b, i, e if i is not None else None, g, None, None, None, gas_m3, scope1, s2_loc,
                        None, None, units, coverage)
    cons = i - e + g
    self_used = max(g - e, 0.0)
    bought = sum(rate for a, z, rate in purchases if a <= b < z) * max(cons, 0.0)
    bought = min(bought, max(cons - self_used, 0.0))
    none = (0.0, 0.0, 0.0)
    unplaced = imp[b][2] - exp.get(b, none)[2] + (gen.get(b, none)[2] if has_pv else 0.0)
    return KpiPoint(
        b, i, e, g, cons, self_used + bought, (self_used + bought) / cons if cons > 0 else None,
        gas_m3, scope1, s2_loc, max(i - bought, 0.0) * f.residual_kg_per_kwh / 1000,
        s2_loc * 1000 / cons if cons > 0 and s2_loc is not None else None, units, coverage, unplaced)
