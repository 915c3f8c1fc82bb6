"""KPI time series at a chosen resolution, from counter rollups.

Each bucket gets the KPI window's formulas (``amounts``, ``figures``, ``green``) applied to its
counter sums, so the buckets of a window with complete data add up to ``kpi.window_kpis`` for
that window; energy counted across a gap is each bucket's ``unplaced_kwh`` rather than a
figure. A bucket with no counter data is absent from the rollups and appears here with null
figures and coverage 0, never as zero energy.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import amounts, figures, green
from lingtan.core.counters import Flat
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


def rollup_days(tz: ZoneInfo, start: datetime) -> bool:
    """Rollup days start at UTC+8 midnight: usable as local days only in such a zone."""
    return start.astimezone(tz).utcoffset() == ORIGIN.utcoffset()


def kpi_series(conn: sa.Connection, site_id: str, start: datetime, end: datetime,
               resolution: Resolution = "1h", now: datetime | None = None, *,
               model: SiteEnergyModel | None = None, counters: amounts.Counters | None = None) -> KpiSeries:
    """``model`` and ``counters``: the site model and counter reads a caller already has for the
    same instant (a dashboard refresh shares them between its figures)."""
    with paused_gc():  # many short-lived objects, no cycles: see lingtan/kernel/gcpause.py
        return _kpi_series(conn, site_id, start, end, resolution, now or clock.now(), model, counters)


def _kpi_series(conn: sa.Connection, site_id: str, start: datetime, end: datetime,
                resolution: Resolution, now: datetime, model: SiteEnergyModel | None,
                counters: amounts.Counters | None) -> KpiSeries:
    model = model or load_site_model(conn, site_id)
    c = counters or amounts.Counters(conn)
    tz = ZoneInfo(model.site.timezone)
    buckets = _buckets(start, end, resolution, tz)
    # Local days and months are sums of rollup days (UTC+8 zones) or hours (anywhere else).
    source = resolution if resolution in ("15m", "1h") else ("1d" if rollup_days(tz, start) else "1h")
    q_start = buckets[0] if buckets else start

    specs, at = _specs(model)
    # The same spreading of green purchases as the KPI window (green.py), from the same balance.
    supplied = lambda a, b: amounts.balance(c, model, a, b).grid_supplied_kwh  # noqa: E731
    c.prefetch(lambda: green.rates(model, now, supplied))  # every purchase period in one read
    rates = green.rates(model, now, supplied)
    # per bucket: for each series in turn, the energy placed in it, covered seconds and energy
    # counted across a gap ending in it — None where the series has no rollup row (a gap, not zero)
    sums: list[Flat | None] = [None] * len(buckets)
    bought = [0.0] * len(buckets)
    position = {b: i for i, b in enumerate(buckets)}  # 15m and 1h: rollup buckets are the series'
    for t, values in cached_series(conn, site_id, specs, q_start, end, source, now):
        i = position.get(t)
        if i is None:  # local days and months gather several rollup buckets
            i = bisect_right(buckets, t) - 1
            if i < 0:
                continue
        if rates:
            # Per rollup row, not per bucket: a local day or month may hold a purchase boundary.
            bought[i] += _green(rates, t, values, at.pv)
        acc = sums[i]
        if acc is None:
            sums[i] = values
        else:
            sums[i] = [y if x is None else x if y is None else x + y
                       for x, y in zip(acc, values, strict=True)]
    meters = len(model.meters_with_role("grid_import")) + len(model.meters_with_role("pv_generation"))
    full = WIDTH[resolution].total_seconds() if resolution in WIDTH and resolution != "1d" else None
    last = len(buckets) - 1
    points = []
    rates_of_year: figures.UnitRates | None = None
    next_year: datetime | None = None
    pv_covered = None if at.pv is None else at.pv + 1
    for i, b in enumerate(buckets):
        if rates_of_year is None or next_year is None or b >= next_year:  # factors change with the year
            year = b.astimezone(tz).year
            rates_of_year = figures.unit_rates(model, year)
            next_year = datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
        b_end = buckets[i + 1] if i < last else bucket_end(b, resolution, tz)
        if full is not None and 0 < i < last:
            seconds = full  # an inner bucket of fixed width lies wholly inside the window
        else:
            seconds = (min(b_end, end) - max(b, start)).total_seconds()
        s = sums[i] or _EMPTY
        # grid import and PV meters' observed time
        covered = (s[1] or 0.0) + ((s[pv_covered] or 0.0) if pv_covered is not None else 0.0)
        coverage = min(covered / (seconds * meters), 1.0) if meters and seconds > 0 else 0.0
        points.append(_point(rates_of_year, b, s, bought[i], coverage, at))
    return KpiSeries(site_id, resolution, model.site.timezone, points)


def bucket_end(b: datetime, resolution: str, tz: ZoneInfo) -> datetime:
    if resolution == "1mo":
        local = b.astimezone(tz)
        return (local + timedelta(days=32)).replace(day=1).astimezone(UTC)
    if resolution == "1d":
        return _local_midnight(b + timedelta(hours=25), tz)
    return b + WIDTH[resolution]


def _green(rates: list[green.Rate], t: datetime, v: Flat, pv: int | None) -> float:
    """Green kWh bought for one rollup row: ``green.piece_kwh`` of the row's grid-supplied
    consumption (``amounts.Balance.grid_supplied_kwh``, written out for speed)."""
    i, e, g = v[0] or 0.0, v[3] or 0.0, (v[pv] or 0.0) if pv is not None else 0.0
    supplied = i - e + g - (g - e if g > e else 0.0)
    trade, gec = green.piece_kwh(rates, t, supplied)
    return trade + gec


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each optional carrier's (delta, covered, gap) starts in a bucket's sums (grid import
    is at 0, export at 3), or None where the site has no meter for it: that series is not read
    at all. One the site meters but that has no data in a bucket makes the bucket's figure a
    gap; one it does not meter is 0 (PV, purchased heat and steam) or no figure (gas,
    production), never a gap (docs/domain.md, coverage)."""

    pv: int | None
    gas: int | None
    production: int | None
    heat: int | None
    steam: int | None


def _specs(model: SiteEnergyModel) -> tuple[list[tuple[list[str], str]], Layout]:
    """The counter series a site's KPI series sums, and where each lands in a bucket's sums.

    Export is summed over every meter that may count it, without asking which incomers have
    an export register (``amounts.electricity_meters``): one without adds nothing to a sum, and
    the series takes its coverage from import and PV only."""
    heat, steam = amounts.purchased_heat_meters(model)
    specs = [([m.id for m in model.meters_with_role("grid_import")], "active_energy_import"),
             (amounts.export_meters(model), "active_energy_export")]
    optional = {"pv": ([m.id for m in model.meters_with_role("pv_generation")], "active_energy_export"),
                "gas": (amounts.natural_gas_meters(model), "gas_volume"),
                "production": ([m.id for m in model.meters_with_role("production")], "production_count"),
                "heat": (heat, "heat_energy"), "steam": (steam, "steam_mass")}
    at: dict[str, int | None] = {}
    for name, spec in optional.items():
        at[name] = 3 * len(specs) if spec[0] else None
        if spec[0]:
            specs.append(spec)
    return specs, Layout(**at)


_EMPTY: Flat = [None] * 21


def _point(f: figures.UnitRates, b: datetime, s: Flat, bought: float, coverage: float,
           at: Layout) -> KpiPoint:
    """``s``: (delta, covered, gap) of grid import, export and the site's other carriers, as
    ``at`` places them; ``bought``: green kWh allocated to the bucket."""
    gas_m3 = s[at.gas] if at.gas is not None else None
    scope1 = None if gas_m3 is None else gas_m3 * f.natural_gas_t_per_m3
    units = s[at.production] if at.production is not None else None
    heat_gj = s[at.heat] if at.heat is not None else 0.0
    steam_t = s[at.steam] if at.steam is not None else 0.0
    heat_t = None if heat_gj is None or steam_t is None else (
        heat_gj * f.heat_t_per_gj + steam_t * f.steam_t_per_t)
    i = s[0]
    s2_loc = None if i is None or heat_t is None else i * f.grid_location_t_per_kwh + heat_t
    e = s[3] or 0.0
    pv = at.pv
    g = s[pv] if pv is not None else 0.0  # a site without PV has 0 of it
    if i is None or g is None:  # a meter without data in the bucket: a gap, not zero
        return KpiPoint(b, i, e if i is not None else None, g, None, None, None, gas_m3, scope1, s2_loc,
                        None, None, units, coverage)
    # written out rather than with max/min/sum: this runs once per point, 8,760 times a year
    cons = i - e + g
    self_used = g - e if g > e else 0.0
    green_kwh = self_used + bought
    unplaced = (s[2] or 0.0) - (s[5] or 0.0) + ((s[pv + 2] or 0.0) if pv is not None else 0.0)
    market = i - bought
    s2_mkt = None if heat_t is None else (market if market > 0 else 0.0) * f.grid_market_t_per_kwh + heat_t
    return KpiPoint(
        b, i, e, g, cons, green_kwh, figures.share(green_kwh / cons) if cons > 0 else None,
        gas_m3, scope1, s2_loc, s2_mkt,
        i * f.grid_location_t_per_kwh * 1000 / cons if cons > 0 else None, units, coverage, unplaced)
