"""KPI time series at a chosen resolution, from counter rollups.

A bucket with no counter data is absent from the rollups and appears here with null figures
and coverage 0, never as zero energy.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import gas
from lingtan.core.amounts import consumption
from lingtan.core.counters import Flat
from lingtan.core.factors import factor
from lingtan.core.green import local_start
from lingtan.core.series_cache import cached_series
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.kernel import clock
from lingtan.kernel.gcpause import paused_gc
from lingtan.kernel.timegrid import ORIGIN, floor_time

Resolution = Literal["15m", "1h", "1d", "1mo"]
WIDTH = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


@dataclass(slots=True)
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
    with paused_gc():  # many short-lived objects, no cycles: see lingtan/kernel/gcpause.py
        return _kpi_series(conn, site_id, start, end, resolution, now)


def _kpi_series(conn: sa.Connection, site_id: str, start: datetime, end: datetime,
                resolution: Resolution, now: datetime | None) -> KpiSeries:
    now = now or clock.now()
    model = load_site_model(conn, site_id)
    tz = ZoneInfo(model.site.timezone)
    buckets = _buckets(start, end, resolution, tz)
    # Local days and months are sums of rollup days (UTC+8 zones) or hours (anywhere else).
    source = resolution if resolution in ("15m", "1h") else ("1d" if _aligned(tz, start) else "1h")
    q_start = buckets[0] if buckets else start

    ids = lambda role: [m.id for m in model.meters_with_role(role)]  # noqa: E731
    grid, pv = ids("grid_import"), ids("pv_generation")
    gas_meters = [m.id for m in model.meters_with_role("boiler_fuel")
                  if (m.params.fuel or model.params.boiler_fuel) == "natural_gas"]
    specs = [(grid, "active_energy_import"), (grid + ids("grid_export"), "active_energy_export"),
             (pv, "active_energy_export"), (gas_meters, "gas_volume"),
             (ids("production"), "production_count")]
    # per bucket: for each series in turn, the energy placed in it, covered seconds and energy
    # counted across a gap ending in it — None where the series has no rollup row (a gap, not zero)
    sums: list[Flat | None] = [None] * len(buckets)
    position = {b: i for i, b in enumerate(buckets)}  # 15m and 1h: rollup buckets are the series'
    for t, values in cached_series(conn, site_id, specs, q_start, end, source, now):
        i = position.get(t)
        if i is None:  # local days and months gather several rollup buckets
            i = bisect_right(buckets, t) - 1
            if i < 0:
                continue
        acc = sums[i]
        if acc is None:
            sums[i] = values
        else:
            sums[i] = [y if x is None else x if y is None else x + y
                       for x, y in zip(acc, values, strict=True)]
    purchases, running = _purchase_rates(conn, model, now)
    meters = len(grid) + len(pv)
    full = WIDTH[resolution].total_seconds() if resolution in WIDTH and resolution != "1d" else None
    last = len(buckets) - 1
    points = []
    factors: YearFactors | None = None
    next_year: datetime | None = None
    for i, b in enumerate(buckets):
        if factors is None or next_year is None or b >= next_year:  # factors change with the local year
            year = b.astimezone(tz).year
            factors = _year_factors(model, year)
            next_year = datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
        if full is not None and 0 < i < last:
            seconds = full  # an inner bucket of fixed width lies wholly inside the window
        else:
            b_end = buckets[i + 1] if i < last else _next(b, resolution, tz)
            seconds = (min(b_end, end) - max(b, start)).total_seconds()
        s = sums[i] or _EMPTY
        covered = (s[1] or 0.0) + (s[7] or 0.0)  # grid import and PV meters' observed time
        coverage = min(covered / (seconds * meters), 1.0) if meters and seconds > 0 else 0.0
        timed = 0.0
        if running:
            b_end = buckets[i + 1] if i < last else _next(b, resolution, tz)
            timed = _timed_kwh(running, max(b, start), min(b_end, end))
        points.append(_point(factors, b, s, purchases, coverage, bool(pv), timed))
    return KpiSeries(site_id, resolution, model.site.timezone, points)


def _next(b: datetime, resolution: str, tz: ZoneInfo) -> datetime:
    if resolution == "1mo":
        local = b.astimezone(tz)
        return (local + timedelta(days=32)).replace(day=1).astimezone(UTC)
    if resolution == "1d":
        return _local_midnight(b + timedelta(hours=25), tz)
    return b + WIDTH[resolution]


Rates = list[tuple[datetime, datetime, float]]


def _purchase_rates(conn: sa.Connection, model: SiteEnergyModel, now: datetime) -> tuple[Rates, Rates]:
    """The rules of ``lingtan.core.green``: for closed periods (start, end, green kWh per kWh
    consumed); for periods still running (start, now, green kWh per second of the period)."""
    tz = ZoneInfo(model.site.timezone)
    closed: Rates = []
    running: Rates = []
    for p in model.purchases:
        a, b = local_start(p.period_start, tz), local_start(p.period_end, tz)
        if now < b:
            if a < now:
                running.append((a, now, p.green_kwh / (b - a).total_seconds()))
            continue
        cons = consumption(conn, model, a, b)
        if cons > 0:
            closed.append((a, b, p.green_kwh / cons))
    return closed, running


def _timed_kwh(running: Rates, b: datetime, b_end: datetime) -> float:
    return sum(rate * (min(b_end, z) - max(b, a)).total_seconds() for a, z, rate in running
               if max(b, a) < min(b_end, z))


@dataclass(frozen=True)
class YearFactors:
    """The factors a point needs, looked up once per calendar year of the series."""

    gas_t_per_1e4_m3: float   # tCO2 per 10⁴ metered m³ (the site's NCV and meter conditions)
    grid_kg_per_kwh: float
    residual_kg_per_kwh: float


def _year_factors(model: SiteEnergyModel, year: int) -> YearFactors:
    overrides, fs = model.overrides_for(year), model.factor_set
    co2 = gas.factors(model.params, model.site.id, fs, year, overrides)["co2:natural_gas"]
    return YearFactors(co2.value * gas.gas_basis(model.params).metered_to_nm3,
                       factor(fs, "grid", model.site.grid_region, year, overrides).value,
                       factor(fs, "grid_residual", "national", year, overrides).value)


_EMPTY: Flat = [None] * 15


def _point(f: YearFactors, b: datetime, s: Flat, purchases: Rates, coverage: float, has_pv: bool,
           timed: float = 0.0) -> KpiPoint:
    """``s``: (delta, covered, gap) of grid import, export, PV, gas and production, in turn;
    ``timed``: green kWh of running periods allocated to the bucket by time."""
    gas_m3 = s[9]
    scope1 = None if gas_m3 is None else gas_m3 * f.gas_t_per_1e4_m3 / 1e4
    units = s[12]
    i = s[0]
    s2_loc = None if i is None else i * f.grid_kg_per_kwh / 1000
    e = s[3] or 0.0
    g = s[6] if has_pv else 0.0  # a site without PV has 0 of it
    if i is None or g is None:  # a meter without data in the bucket: a gap, not zero
        return KpiPoint(b, i, e if i is not None else None, g, None, None, None, gas_m3, scope1, s2_loc,
                        None, None, units, coverage)
    # written out rather than with max/min/sum: this runs once per point, 8,760 times a year
    cons = i - e + g
    self_used = g - e if g > e else 0.0
    bought = 0.0
    if (purchases or timed) and cons > 0:
        for a, z, rate in purchases:
            if a <= b < z:
                bought += rate
        bought = bought * cons + timed
        room = cons - self_used
        bought = bought if bought < room else (room if room > 0 else 0.0)
    green = self_used + bought
    unplaced = (s[2] or 0.0) - (s[5] or 0.0) + ((s[8] or 0.0) if has_pv else 0.0)
    market = i - bought
    return KpiPoint(
        b, i, e, g, cons, green, green / cons if cons > 0 else None,
        gas_m3, scope1, s2_loc, (market if market > 0 else 0.0) * f.residual_kg_per_kwh / 1000,
        s2_loc * 1000 / cons if cons > 0 else None, units, coverage, unplaced)
