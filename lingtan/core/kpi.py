"""Site KPIs: power now, the one KPI engine for any window (``window_kpis``), power series.

Every energy and carbon figure anywhere — ``/kpis``, ``/kpis/now``, the dashboard tiles, the
alert rules, the reports — is ``window_kpis`` for some window (formulas in docs/domain.md, in
``amounts`` and ``figures``); ``series.kpi_series`` applies the same formulas per bucket, so
its buckets add up to the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import activity, amounts, figures, green, tariff
from lingtan.core.factors import Factor
from lingtan.core.queries import get_site, meters_by_role
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.kernel import clock, periods
from lingtan.kernel.periods import split_by_year

# A power reading older than this is not "now": the tile shows the meter as offline, never 0.
FRESH = timedelta(minutes=2)


@dataclass
class PowerNow:
    grid_kw: Annotated[float | None, Field(description="signed: positive import, negative export")]
    pv_kw: float | None
    load_kw: float | None
    as_of: datetime | None


@dataclass
class Overview:
    site_id: str
    power: PowerNow
    today: Annotated[WindowKpis, Field(description=(
        "the KPI window from the site's local midnight until now: the same figures as "
        "GET /sites/{id}/kpis for that window"))]
    offline: list[str] = field(default_factory=list)


@dataclass
class SitePower:
    """Every meter of a site by role, with its newest active power: all that the "now" figures
    (power now, offline meters, flows by role) need, read in one statement."""

    roles: dict[str, list[str]]                  # role → meter ids, in id order
    latest: dict[str, tuple[datetime, float]]    # meter → (time, kW) of its newest active power

    def meters(self, role: str) -> list[str]:
        return self.roles.get(role, [])


def site_power(conn: sa.Connection, site_id: str) -> SitePower:
    """The site's meters by role and their newest active power, from ``latest_readings``."""
    rows = conn.execute(
        sa.text(
            "SELECT m.id, m.role, l.time, l.value FROM meters m"
            " LEFT JOIN latest_readings l ON l.meter_id = m.id AND l.quantity = 'active_power'"
            " WHERE m.site_id = :s ORDER BY m.id"
        ),
        {"s": site_id},
    )
    power = SitePower({}, {})
    for meter, role, time, value in rows:
        if role:
            power.roles.setdefault(role, []).append(meter)
        if time is not None:
            power.latest[meter] = (time, value)
    return power


def _power_now(power: SitePower, meters: list[str], now: datetime, offline: list[str]
               ) -> tuple[float | None, datetime | None]:
    if not meters:
        return None, None
    total, newest = 0.0, None
    for meter in meters:
        row = power.latest.get(meter)
        if row is None or now - row[0] > FRESH:
            offline.append(meter)
            return None, None
        total += row[1]
        newest = row[0] if newest is None else max(newest, row[0])
    return total, newest


def local_midnight(now: datetime, timezone: str) -> datetime:
    """Start of the site's calendar day containing ``now``."""
    return periods.calendar("day", clock.site_today(timezone, now), timezone)[0]


def power_now(conn: sa.Connection, site_id: str, now: datetime | None = None, *,
              power: SitePower | None = None) -> tuple[PowerNow, list[str]]:
    """Grid, PV and site power from the newest readings, and the meters without a fresh one.
    ``power``: the site's meters and newest readings, if the caller has read them already."""
    now = now or clock.now()
    power = power or site_power(conn, site_id)
    offline: list[str] = []
    grid_kw, t_grid = _power_now(power, power.meters("grid_import"), now, offline)
    pv_kw, t_pv = _power_now(power, power.meters("pv_generation"), now, offline)
    load = grid_kw + pv_kw if grid_kw is not None and pv_kw is not None else None
    times = [t for t in (t_grid, t_pv) if t is not None]
    return PowerNow(grid_kw, pv_kw, load, min(times) if times else None), offline


def site_overview(conn: sa.Connection, site_id: str, now: datetime | None = None, *,
                  model: SiteEnergyModel | None = None, power: SitePower | None = None,
                  today: WindowKpis | None = None) -> Overview:
    """Power now, and the site's day so far through the one KPI engine (``window_kpis``). The
    keyword arguments are what a caller already read or computed for the same site and instant
    (``today``: ``window_kpis`` from local midnight to ``now``)."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    power_kw, offline = power_now(conn, site_id, now, power=power)
    if today is None:
        midnight = local_midnight(now, model.site.timezone)
        today = window_kpis_many(conn, site_id, [(midnight, now)], now, model=model)[0]
    return Overview(site_id, power_kw, today, offline)


@dataclass
class RolePower:
    role: str
    kw: float | None          # None: a meter of the role has no fresh reading
    meters: int
    offline: list[str]


def power_by_role(conn: sa.Connection, site_id: str, roles: tuple[str, ...], now: datetime | None = None,
                  *, power: SitePower | None = None) -> dict[str, RolePower]:
    """Active power now summed per meter role, for the roles asked; a role whose meters do not
    all have a fresh reading has no total (a partial sum would understate it)."""
    now = now or clock.now()
    if power is None:
        get_site(conn, site_id)
        power = site_power(conn, site_id)
    out = {}
    for role in roles:
        with_power = [m for m in power.meters(role) if m in power.latest]
        offline: list[str] = []
        kw, _ = _power_now(power, with_power, now, offline)
        out[role] = RolePower(role, kw if with_power else None, len(with_power), offline)
    return out


@dataclass
class PowerSeries:
    time: list[datetime]
    grid_kw: list[float | None]
    pv_kw: list[float | None]
    load_kw: list[float | None]


def power_series(conn: sa.Connection, site_id: str, start: datetime, end: datetime,
                 resolution: str = "1m", *, model: SiteEnergyModel | None = None) -> PowerSeries:
    """Average power per bucket; a bucket with no data is None (a gap), never 0. ``model``: the
    site model, if the caller has it."""
    from lingtan.core.rollups import RESOLUTIONS

    table = RESOLUTIONS[resolution]
    if model is None:
        get_site(conn, site_id)
    rows = conn.execute(
        sa.text(
            f"""
            SELECT r.bucket,
                   sum(r.avg) FILTER (WHERE m.role = 'grid_import') AS grid,
                   sum(r.avg) FILTER (WHERE m.role = 'pv_generation') AS pv
            FROM {table} r JOIN meters m ON m.id = r.meter_id
            WHERE m.site_id = :s AND r.quantity = 'active_power'
              AND m.role IN ('grid_import', 'pv_generation')
              AND r.bucket >= :a AND r.bucket < :b
            GROUP BY r.bucket ORDER BY r.bucket
            """
        ),
        {"s": site_id, "a": start, "b": end},
    ).all()
    has_pv = bool(model.meters_with_role("pv_generation") if model is not None
                  else meters_by_role(conn, site_id, "pv_generation"))
    series = PowerSeries([], [], [], [])
    for bucket, grid, pv in rows:
        pv_value = pv if has_pv else 0.0  # a site without PV has 0 kW of it, not a gap
        series.time.append(bucket)
        series.grid_kw.append(grid)
        series.pv_kw.append(pv_value)
        series.load_kw.append(grid + pv_value if grid is not None and pv_value is not None else None)
    return series


# --- KPIs for any window: rolling, calendar period or explicit ---------------------------------


@dataclass
class WindowKpis:
    site_id: str
    start: datetime
    end: datetime
    timezone: str
    electricity: figures.Electricity
    carbon: figures.Carbon
    energy: figures.Energy
    waste_heat: figures.WasteHeat
    compressors: list[figures.Compressor]
    boilers: list[figures.Boiler]
    factors: list[Factor]
    notes: list[str]


def window_kpis(conn: sa.Connection, site_id: str, start: datetime, end: datetime,
                now: datetime | None = None) -> WindowKpis:
    """Every site KPI for [start, end), each figure with its coverage and each factor with its source."""
    return window_kpis_many(conn, site_id, [(start, end)], now)[0]


def window_kpis_many(conn: sa.Connection, site_id: str, windows: Sequence[tuple[datetime, datetime]],
                     now: datetime | None = None, *, model: SiteEnergyModel | None = None,
                     counters: amounts.Counters | None = None) -> list[WindowKpis]:
    """``window_kpis`` of each window, with one read of the site model, one batch of counter reads
    for all of them (their tiles, year pieces and green-purchase periods overlap) and one read of
    the activity data. ``model``, ``counters``: what the caller already read for the same site
    and instant."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    c = counters or amounts.Counters(conn)
    c.learn(amounts.series_asked(model))

    def ask() -> None:  # the reads the windows below make; the values play no part in which
        def supplied(a: datetime, b: datetime) -> float:
            amounts.balance(c, model, a, b)
            return 1.0  # as if every purchase period had consumption: all their pieces are asked
        rates = green.rates(model, now, supplied)
        for start, end in windows:
            amounts.gather(c, model, start, end)
            green.allocate(rates, start, end, supplied)
            pieces = split_by_year(start, end, model.site.timezone)
            for _, a, b in pieces if len(pieces) > 1 else []:
                amounts.gather(c, model, a, b)
                green.allocate(rates, a, b, supplied)

    c.prefetch(ask)
    pieces = [p for start, end in windows for p in split_by_year(start, end, model.site.timezone)]
    entries = activity.entries_for(c.conn, model, pieces)
    costs: list[list[tariff.BandCost] | None] = [None] * len(windows)
    if tariff.by_time_of_day(model.params):
        grid = [m.id for m in model.meters_with_role("grid_import")]
        tz = model.site.timezone
        cut = [tariff.tariffs_in(model.params, tz, a, b) for a, b in windows]
        flat = [(a, b, t) for parts in cut for t, a, b in parts]
        profiles = iter(tariff.day_profiles(c.conn, grid, flat, tz))
        costs = [tariff.merged([line for t, _, _ in parts for line in tariff.cost_by_band(t, next(profiles))])
                 for parts in cut]
    return [_window_kpis(c, model, start, end, now, entries, cost)
            for (start, end), cost in zip(windows, costs, strict=True)]


def _window_kpis(c: amounts.Counters, model: SiteEnergyModel, start: datetime, end: datetime,
                 now: datetime, entries: list[activity.StoredActivity], costs: list[tariff.BandCost] | None
                 ) -> WindowKpis:
    totals = figures.Totals()
    am = amounts.gather(c, model, start, end)

    def supplied(a: datetime, b: datetime) -> float:
        # the same counters and formula as the window's own balance (usually the window itself)
        e = am if (a, b) == (start, end) else amounts.balance(c, model, a, b)
        return e.grid_supplied_kwh

    rates = green.rates(model, now, supplied)
    allocated = green.allocate(rates, start, end, supplied)
    totals.notes.extend(allocated.notes)
    pieces = split_by_year(start, end, model.site.timezone)
    for year, a, b in pieces:
        # Factors change with the year: a window across New Year is converted piece by piece.
        piece = am if len(pieces) == 1 else amounts.gather(c, model, a, b)
        piece_green = allocated if len(pieces) == 1 else green.allocate(rates, a, b, supplied)
        r = figures.recovered_heat(model, piece)
        figures.piece(model, piece, piece_green, year, totals, r.heat.value if r.claimed else 0.0)
    activity.include(c.conn, model, pieces, totals, entries)  # fuel and refrigerant entered by hand
    recovered = figures.recovered_heat(model, am)
    if tariff.by_time_of_day(model.params):
        totals.notes.append(f"cost: time-of-use bands in the site's local time ({model.site.timezone}), the "
                            "flat price where no band applies and for energy counted across a meter gap, "
                            "whose time of day is unknown")
    waste = figures.waste_heat(model, totals, recovered)
    params = {m.id: m.params for m in model.meters}
    # Only heat that went into the feedwater was not the burner's work; heat for space heating
    # or showers never passed through the boiler. An estimate is not taken off a measurement.
    into_feedwater = recovered.claimed and model.params.heat_recovery.use == "boiler_feedwater"
    preheat = recovered.heat.value if into_feedwater and recovered.basis == "measured" else 0.0
    unmetered_preheat = into_feedwater and recovered.basis == "estimated"
    # Several boilers share the recovered heat in proportion to the fuel each burned.
    fuel_total = sum(b.fuel_amount.value for b in am.boilers) or 1.0
    return WindowKpis(
        site_id=model.site.id, start=start, end=end, timezone=model.site.timezone,
        electricity=figures.electricity(model, am, allocated, costs),
        carbon=figures.carbon(model, am, totals),
        energy=figures.energy(model, am, totals), waste_heat=waste,
        compressors=[figures.compressor(c, params.get(c.meter_id)) for c in am.compressors],
        boilers=[figures.boiler(model, b, preheat * b.fuel_amount.value / fuel_total, unmetered_preheat)
                 for b in am.boilers],
        factors=sorted(totals.factors.values(), key=lambda f: f.key),
        notes=totals.notes,
    )
