"""The figures of the zero-carbon programme: a year or any window, metered or entered, and the
indicators the targets and evaluations are judged on (docs/domain.md, "Zero-carbon programme").

Every figure comes from the one KPI engine: a metered window from ``window_kpis`` (or the closed
figures of a closed year), an entered year from the engine's own per-year formulas
(``figures.piece``, activity data for its fuels) applied to the entered amounts. What the
programme adds — output value, floor area, PV whose certificates were sold — is applied here,
and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from lingtan.core import activity, closings, figures, kpi
from lingtan.core.amounts import Amount, SiteAmounts
from lingtan.core.carbon import ConversionError
from lingtan.core.factors import FactorError
from lingtan.core.green import GreenAllocation
from lingtan.core.located import LocatedError
from lingtan.core.programme_schema import HistoryYear, ZeroCarbonProgramme
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.core.site_schema import GEC_KWH
from lingtan.kernel import clock

Source = Literal["entered", "closed", "provisional", "running"]
SOURCES = {
    "entered": "entered annual data (history), computed with the factors valid that year",
    "closed": "metered, closed period: the figures as closed",
    "provisional": "metered, period ended but not closed: provisional",
    "running": "metered, period still running",
}


class FigureError(LocatedError):
    """An entered year that cannot be computed, at ``loc`` (from the top of the site file)."""


@dataclass
class Extras:
    """What the programme knows about a window besides the engine's figures."""

    output_value_wan_cny: float | None = None
    floor_area_m2: float | None = None
    pv_certificates_sold_kwh: float = 0.0


@dataclass
class WindowFigures:
    start: datetime
    end: datetime
    source: Source
    kpis: kpi.WindowKpis
    extras: Extras
    evidence: list[str] = field(default_factory=list)


def local_midnight(d: date, tz: str) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def year_window(year: int, tz: str) -> tuple[datetime, datetime]:
    return local_midnight(date(year, 1, 1), tz), local_midnight(date(year + 1, 1, 1), tz)


# --- entered years ------------------------------------------------------------------------------


def entered_kpis(model: SiteEnergyModel, h: HistoryYear, loc: tuple[str | int, ...] = (),
                 now: datetime | None = None) -> kpi.WindowKpis:
    """An entered year through the engine's formulas: its electricity, heat and steam as the
    amounts of a metered year, its fuels as activity data over the whole year."""
    tz = model.site.timezone
    start, end = year_window(h.year, tz)
    one = lambda v: Amount(v, 1.0, 1)  # noqa: E731 — entered for the whole year: full coverage
    am = SiteAmounts(
        start=start, end=end, grid_import_kwh=one(h.electricity_bought_kwh),
        grid_export_kwh=one(h.electricity_exported_kwh), pv_kwh=one(h.pv_generation_kwh), fuels={},
        purchased_heat_gj=Amount(h.heat_gj, 1.0, 1 if h.heat_gj else 0),
        purchased_steam_t=Amount(h.steam_t, 1.0, 1 if h.steam_t else 0), recovered_heat_gj=Amount(),
        production=one(h.production) if h.production is not None else Amount(),
    )
    bought = h.green_trade_kwh + h.green_certificates * GEC_KWH
    # The year is closed: its purchases are spread over its own consumption (docs/domain.md).
    green = GreenAllocation(trade_kwh=h.green_trade_kwh, gec_kwh=h.green_certificates * GEC_KWH,
                            purchases=int(bought > 0), methods={"consumption"} if bought > 0 else set())
    stamp = now or clock.now()
    entries = []
    for k, f in enumerate(h.fuels):
        e = f.entry(h.year, h.evidence)
        value, unit = activity.canonical(e)
        entries.append(activity.StoredActivity(**e.model_dump(), id=-(k + 1), entered_by="history",
                                               entered_at=stamp, amount_canonical=value, unit_canonical=unit))
    t = figures.Totals()
    try:
        figures.piece(model, am, green, h.year, t, 0.0)
        activity.include(None, model, [(h.year, start, end)], t, entries)  # type: ignore[arg-type]
    except (FactorError, ConversionError) as exc:
        raise FigureError((*loc, "year"), (
            f"{h.year} cannot be computed: {exc}. The library starts at 2021; add a factor_override "
            f"valid in {h.year} with its source (e.g. the grid factor published for that year)")) from None
    return kpi.WindowKpis(
        site_id=model.site.id, start=start, end=end, timezone=tz,
        electricity=figures.electricity(model, am, green, None),
        carbon=figures.carbon(model, am, t), energy=figures.energy(model, am, t),
        waste_heat=figures.waste_heat(model, t, figures.recovered_heat(model, am)),
        compressors=[], boilers=[], factors=sorted(t.factors.values(), key=lambda f: f.key),
        notes=[f"entered annual data: {h.evidence}", *t.notes],
    )


def _history(z: ZeroCarbonProgramme, year: int) -> tuple[int, HistoryYear] | None:
    return next(((i, h) for i, h in enumerate(z.programme.history) if h.year == year), None)


# --- extras -----------------------------------------------------------------------------------------


def _overlap(a: datetime, b: datetime, first: date, end_day: date, tz: str) -> float:
    lo, hi = local_midnight(first, tz), local_midnight(end_day, tz)
    return max((min(b, hi) - max(a, lo)).total_seconds(), 0.0) / (hi - lo).total_seconds()


def extras(z: ZeroCarbonProgramme, tz: str, a: datetime, b: datetime) -> Extras:
    """Output value and sold PV certificates of a metered window, each entry by the share of its
    days the window covers (as activity data); output value is None when no entry touches it."""
    out = [(o.value_wan_cny, _overlap(a, b, o.first_day, o.end_day, tz)) for o in z.programme.output_value]
    touched = [v * s for v, s in out if s > 0]
    sold = sum(c.certificates * GEC_KWH * _overlap(a, b, c.period_start, c.period_end, tz)
               for c in z.programme.pv_certificates_sold)
    return Extras(sum(touched) if touched else None, z.programme.floor_area_m2, sold)


# --- windows and years --------------------------------------------------------------------------------


def window_figures(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, start: datetime, end: datetime,
                   now: datetime | None = None, model: SiteEnergyModel | None = None) -> WindowFigures:
    """A metered window (e.g. the last 12 months, the year to date)."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    k = kpi.window_kpis_many(conn, site_id, [(start, end)], now, model=model)[0]
    return WindowFigures(start, end, "running" if end >= now else "provisional", k,
                         extras(z, model.site.timezone, start, end))


def year_figures(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, year: int,
                 now: datetime | None = None, model: SiteEnergyModel | None = None) -> WindowFigures:
    """A calendar year (site-local): entered if the history has it, else metered — as closed when
    the year is closed, provisional or running otherwise."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    tz = model.site.timezone
    start, end = year_window(year, tz)
    entered = _history(z, year)
    if entered is not None:
        i, h = entered
        k = entered_kpis(model, h, ("programme", "history", i), now)
        return WindowFigures(start, end, "entered", k,
                             Extras(h.output_value_wan_cny, z.programme.floor_area_m2,
                                    h.pv_certificates_sold * GEC_KWH), [h.evidence])
    if end <= now:
        detail = closings.period_detail(conn, site_id, "year", date(year, 1, 1), now, restated=False)
        if detail.kpis is not None:
            return WindowFigures(start, end, "closed", detail.kpis, extras(z, tz, start, end))
    if start >= now:
        raise ValueError(f"{year} has not begun")
    if end <= now:
        return window_figures(conn, site_id, z, start, end, now, model)
    # A running year: its figures to date, but its window stays the whole year, so it is never
    # taken for an ended year (the latest complete year, a target year that is over).
    f = window_figures(conn, site_id, z, start, now, now, model)
    return WindowFigures(start, end, "running", f.kpis, f.extras)


def last_12_months(now: datetime, tz: str) -> tuple[datetime, datetime]:
    """The twelve whole site-local months before the current one."""
    local = now.astimezone(ZoneInfo(tz)).date()
    first = date(local.year - 1, local.month, 1)
    return local_midnight(first, tz), local_midnight(date(local.year, local.month, 1), tz)


def year_position(t: datetime, tz: str) -> float:
    """An instant as a fractional calendar year (site-local): 1 July 2025 00:00 ≈ 2025.496."""
    local = t.astimezone(ZoneInfo(tz))
    a, b = year_window(local.year, tz)
    return local.year + (t - a).total_seconds() / (b - a).total_seconds()


def midpoint(a: datetime, b: datetime, tz: str) -> float:
    return year_position(a + (b - a) / 2, tz)


MIN_COVERAGE = 0.9  # docs/domain.md: a window stands for a year only with data for 90 % of its time


def complete(f: WindowFigures) -> bool:
    """Entered, or metered with data for at least ``MIN_COVERAGE`` of the window's time."""
    return f.source == "entered" or f.kpis.electricity.consumption_kwh.coverage >= MIN_COVERAGE


# --- indicators -----------------------------------------------------------------------------------------

UNITS = {
    "emissions": "tCO2e", "tce_per_unit": "kgce/{unit}", "energy_per_unit": "kgce/{unit}",
    "electricity_per_unit": "kWh/{unit}", "carbon_per_unit": "kgCO2e/{unit}",
    "carbon_per_output_value": "tCO2e/10⁴ CNY", "tce_per_output_value": "tce/10⁴ CNY",
    "carbon_per_m2": "kgCO2e/m²", "carbon_per_tce": "tCO2e/tce", "green_power_share": "ratio",
    "pv_self_consumption": "ratio", "intensity_product": "kgCO2e/{unit}",
    "intensity_output_value": "tCO2e/10⁴ CNY", "intensity_floor_area": "kgCO2e/m²",
}


def unit_of(name: str, production_unit: str) -> str:
    return UNITS[name].format(unit=production_unit)


def green_share(f: WindowFigures) -> float | None:
    """Green-power share for the programme: own PV whose certificates were sold is not green for the
    site, because the certificate took the attribute (docs/domain.md, "Green power")."""
    e = f.kpis.electricity
    cons = e.consumption_kwh.value
    if cons is None or cons <= 0:
        return None
    own = max((e.pv_self_consumed_kwh.value or 0.0) - f.extras.pv_certificates_sold_kwh, 0.0)
    green = own + (e.green_trade_kwh.value or 0.0) + (e.green_certificate_kwh.value or 0.0)
    return figures.share(min(green / cons, 1.0))


def _div(num: float | None, den: float | None, scale: float = 1.0) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num * scale / den


def indicator(name: str, f: WindowFigures, basis: Literal["location", "market"] = "market") -> float | None:
    """One indicator of a window: every programme figure is defined here (docs/domain.md)."""
    c, e, x = f.kpis.carbon, f.kpis.energy, f.extras
    s12 = (c.scope12_market_t if basis == "market" else c.scope12_location_t).value
    prod = e.production.value
    match name:
        case "emissions":
            return s12
        case "tce_per_unit" | "energy_per_unit":
            return _div(e.tce_total.value, prod, 1000.0)
        case "electricity_per_unit":
            return _div(f.kpis.electricity.consumption_kwh.value, prod)
        case "carbon_per_unit" | "intensity_product":
            return _div(s12, prod, 1000.0)
        case "carbon_per_output_value" | "intensity_output_value":
            return _div(s12, x.output_value_wan_cny)
        case "tce_per_output_value":
            return _div(e.tce_total.value, x.output_value_wan_cny)
        case "carbon_per_m2" | "intensity_floor_area":
            return _div(s12, x.floor_area_m2, 1000.0)
        case "carbon_per_tce":
            return _div(s12, e.tce_total.value)
        case "green_power_share":
            return green_share(f)
        case "pv_self_consumption":
            return f.kpis.electricity.self_consumption.value
    raise ValueError(f"unknown indicator {name!r}")


def month_windows(end: datetime, months: int, tz: str) -> list[tuple[datetime, datetime]]:
    """The ``months`` whole site-local months before the month ``end`` falls in, oldest first."""
    local = end.astimezone(ZoneInfo(tz)).date().replace(day=1)
    out = []
    for _ in range(months):
        prev = (local - timedelta(days=1)).replace(day=1)
        out.append((local_midnight(prev, tz), local_midnight(local, tz)))
        local = prev
    return out[::-1]


def monthly_figures(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, now: datetime, months: int,
                    model: SiteEnergyModel | None = None) -> list[WindowFigures]:
    """The last ``months`` whole months, one engine call for all of them."""
    model = model or load_site_model(conn, site_id)
    tz = model.site.timezone
    windows = month_windows(now, months, tz)
    ks = kpi.window_kpis_many(conn, site_id, windows, now, model=model)
    return [WindowFigures(a, b, "provisional", k, extras(z, tz, a, b))
            for (a, b), k in zip(windows, ks, strict=True)]
