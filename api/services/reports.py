"""Monthly and annual reports: GHG inventory, energy balance, green-factory indicators.

Every number comes from the KPI engine (``window_kpis``) for the same calendar window, so a
report never disagrees with the KPI tiles or ``/kpis?period=…``. This module only selects,
arranges and explains; the file formats are in ``report_formats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field

from api.factors import Factor
from api.services import periods
from api.services.carbon import convert
from api.services.figures import CarrierLine, Figure
from api.services.kpi import WindowKpis, window_kpis
from api.services.site_model import SiteEnergyModel, load_site_model
from lingtan import clock

Period = Literal["month", "year"]
FULL = 0.999  # coverage at or above this reads as complete (rounding of minute counts)


@dataclass
class ReportSite:
    id: str
    name: str
    timezone: str
    grid_region: str
    factor_set: str


@dataclass
class ReportPeriod:
    kind: Period
    label: Annotated[str, Field(examples=["2026-11"])]
    start: Annotated[datetime, Field(description="local time in the site's zone")]
    end: Annotated[datetime, Field(description="local time, exclusive")]


@dataclass
class _Window:
    model: SiteEnergyModel
    site: ReportSite
    period: ReportPeriod
    start: datetime  # UTC
    end: datetime
    now: datetime
    kpis: WindowKpis


def _window(conn: sa.Connection, site_id: str, period: str, day: date | None,
            now: datetime | None) -> _Window:
    if period not in ("month", "year"):
        raise periods.PeriodError("period", f"unknown period {period!r} (known: month, year)")
    now = now or clock.now()
    model = load_site_model(conn, site_id)  # raises NotFound for an unknown site
    tz = model.site.timezone
    day = day or now.astimezone(ZoneInfo(tz)).date()
    start, end = periods.calendar(period, day, tz)
    label = f"{day.year}-{day.month:02d}" if period == "month" else str(day.year)
    local = ZoneInfo(tz)
    site = ReportSite(model.site.id, model.site.name, tz, model.site.grid_region, model.factor_set)
    kind: Period = "month" if period == "month" else "year"
    shown = ReportPeriod(kind, label, start.astimezone(local), end.astimezone(local))
    return _Window(model, site, shown, start, end, now, window_kpis(conn, site_id, start, end, now))


def _coverage_notes(w: _Window, named: list[tuple[str, Figure]]) -> list[str]:
    notes = []
    if w.end > w.now:
        as_of = w.now.astimezone(ZoneInfo(w.site.timezone)).isoformat(timespec="minutes")
        notes.append(f"The period is still running: figures cover it up to {as_of}, and coverage "
                     "counts the rest of the period as without data.")
    short: dict[str, list[str]] = {}
    for name, fig in named:
        if fig.coverage < FULL:
            short.setdefault(f"{fig.coverage:.1%}", []).append(name)
    for share, names in short.items():
        notes.append(f"{' and '.join(names)}: meter data covers {share} of the period.")
    if short:
        notes.append("Counters still count energy used across a gap once the next reading arrives; "
                     "nothing is extrapolated for time with no reading at all.")
    return notes


def _add(*figs: Figure, unit: str) -> Figure:
    values = [f.value for f in figs]
    total = None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]
    return Figure(total, unit, min(f.coverage for f in figs))


# --- GHG inventory ---------------------------------------------------------------------------


@dataclass
class InventoryTotals:
    scope1_t: Figure
    scope2_location_t: Figure
    scope2_market_t: Figure
    total_location_t: Annotated[Figure, Field(description="Scope 1 + Scope 2 location-based")]
    total_market_t: Annotated[Figure, Field(description="Scope 1 + Scope 2 market-based")]


@dataclass
class GreenInstruments:
    """Contractual green power deducted from grid import for the market-based Scope 2."""

    gec_kwh: Annotated[Figure, Field(description="green certificates, 1 GEC = 1000 kWh")]
    trade_kwh: Annotated[Figure, Field(description="green-power trades")]
    purchases: Annotated[list[str], Field(description="purchases overlapping the period")] = field(
        default_factory=list)


@dataclass
class MonthRow:
    month: Annotated[str, Field(examples=["2026-01"])]
    consumption_kwh: float | None
    scope1_t: float | None
    scope2_location_t: float | None
    scope2_market_t: float | None
    coverage: float


@dataclass
class Inventory:
    site: ReportSite
    period: ReportPeriod
    lines: Annotated[list[CarrierLine], Field(description="by scope and carrier; totals are their sums")]
    totals: InventoryTotals
    green_power: GreenInstruments
    factors: list[Factor]
    notes: list[str]
    monthly: Annotated[list[MonthRow] | None, Field(description="annual reports: one row per month")] = None


def _purchases(w: _Window) -> list[str]:
    first, last = w.period.start.date(), w.period.end.date()
    out = []
    for p in w.model.purchases:
        if p.period_start < last and p.period_end > first:
            amount = f"{p.certificates:g} GEC" if p.kind == "gec" else f"{p.kwh:g} kWh"
            ref = f" ({p.reference})" if p.reference else ""
            out.append(f"{p.kind} {amount}, {p.period_start} to {p.period_end} (exclusive){ref}")
    return out


def _factor(factors: list[Factor], kind: str, subject: str) -> Factor | None:
    return next((f for f in factors if f.kind == kind and f.subject == subject), None)


def _value(f: Factor | None) -> str:
    if f is None:
        return "(not used)"
    year = f", {f.year} data" if f.year else ""
    return f"({f.value:g} {f.unit}{year})"


def ghg_inventory(conn: sa.Connection, site_id: str, period: str = "month", day: date | None = None,
                  now: datetime | None = None) -> Inventory:
    """Scope 1 and 2 (location- and market-based) for a calendar month or year in the site's zone."""
    w = _window(conn, site_id, period, day, now)
    k = w.kpis
    c = k.carbon
    totals = InventoryTotals(
        scope1_t=c.scope1_t, scope2_location_t=c.scope2_location_t, scope2_market_t=c.scope2_market_t,
        total_location_t=_add(c.scope1_t, c.scope2_location_t, unit="tCO2e"),
        total_market_t=_add(c.scope1_t, c.scope2_market_t, unit="tCO2e"),
    )
    e = k.electricity
    green = GreenInstruments(e.green_certificate_kwh, e.green_trade_kwh, _purchases(w))
    lines = sorted(c.by_carrier, key=lambda ln: (ln.scope, ln.carrier))
    location = _factor(k.factors, "grid", w.site.grid_region)
    notes = [
        f"Scope 2 location-based uses the {location.label if location else w.site.grid_region} average "
        f"{_value(location)}; market-based uses the national residual mix "
        f"{_value(_factor(k.factors, 'grid_residual', 'national'))}: the national average excluding "
        "market-traded non-fossil power, the only residual mix MEE/NBS publish.",
        "CO2 only: the MEE factors cover carbon dioxide, so tCO2e equals tCO2. Scope 3 is not included.",
    ]
    if (green.gec_kwh.value or 0) + (green.trade_kwh.value or 0) > 0:
        notes.append("Green certificates and green-power trades are deducted from grid import for the "
                     "market-based figure, each spread over its purchase period in proportion to "
                     "the consumption the site's own PV did not cover.")
    if e.pv_generation_kwh.value:
        notes.append("The electricity line's amount is grid import (the Scope 2 basis); its tce counts all "
                     "electricity consumed, self-consumed PV included (GB/T 2589-2020).")
    notes += _coverage_notes(w, [("Scope 1", c.scope1_t), ("Scope 2", c.scope2_location_t)])
    notes += k.notes
    monthly = _monthly(conn, w) if period == "year" else None
    return Inventory(w.site, w.period, lines, totals, green, k.factors, notes, monthly)


def _monthly(conn: sa.Connection, w: _Window) -> list[MonthRow]:
    rows = []
    year = w.period.start.year
    for month in range(1, 13):
        a, b = periods.calendar("month", date(year, month, 1), w.site.timezone)
        k = window_kpis(conn, w.site.id, a, b, w.now)
        figs = [k.electricity.consumption_kwh, k.carbon.scope1_t, k.carbon.scope2_location_t,
                k.carbon.scope2_market_t]
        rows.append(MonthRow(f"{year}-{month:02d}", *(f.value for f in figs),
                             coverage=min(f.coverage for f in figs)))
    return rows


# --- energy balance --------------------------------------------------------------------------


@dataclass
class BalanceLine:
    item: str
    carrier: str
    amount: float | None
    unit: str
    tce: float | None
    share: Annotated[float | None, Field(description="of the comprehensive energy consumption (tce)")]
    coverage: float
    basis: Literal["measured", "estimated", "none"] = "measured"
    note: str = ""


@dataclass
class EnergyBalance:
    site: ReportSite
    period: ReportPeriod
    inputs: list[BalanceLine]
    outputs: list[BalanceLine]
    consumption: Annotated[list[BalanceLine], Field(description=(
        "by carrier; tce adds up to total_tce (inputs − outputs)"))]
    pv_self_consumed: BalanceLine
    recovered_heat: Annotated[BalanceLine, Field(description=(
        "recovered inside the site: shown for scale, not added to the total"))]
    total_tce: Annotated[Figure, Field(description="comprehensive energy consumption, GB/T 2589-2020")]
    total_tce_equal_value: Annotated[Figure, Field(description=(
        "electricity at the site's equal value (等价值); null unless the site sets it"))]
    factors: list[Factor]
    notes: list[str]


ITEM = {"natural_gas": "natural gas", "heat": "purchased heat", "steam": "purchased steam"}


def _tce(w: _Window, carrier: str, amount: float | None, unit: str, used: list[Factor]) -> float | None:
    """tce through the engine's own calculator, so the site's factor overrides apply here too."""
    if amount is None:
        return None
    year = w.period.start.year
    c = convert(carrier, max(amount, 0.0), unit, factor_set=w.site.factor_set, year=year,
                overrides=w.model.overrides_for(year))
    used += [f for f in c.factors if f.kind == "tce"]  # the CO2 side of the conversion is unused here
    return c.tce


def _merge(factors: list[Factor], more: list[Factor]) -> list[Factor]:
    known = {f.key: f for f in factors}
    for f in more:
        known.setdefault(f.key, f)
    return sorted(known.values(), key=lambda f: f.key)


def _share(tce: float | None, total: float | None) -> float | None:
    return tce / total if tce is not None and total else None


def energy_balance(conn: sa.Connection, site_id: str, period: str = "month", day: date | None = None,
                   now: datetime | None = None) -> EnergyBalance:
    """Energy in and out of the site, what it consumed per carrier, each in tce with its share."""
    w = _window(conn, site_id, period, day, now)
    k = w.kpis
    e = k.electricity
    total = k.energy.tce_total
    tot = total.value
    used: list[Factor] = []

    def elec(item: str, fig: Figure) -> BalanceLine:
        tce = _tce(w, "electricity", fig.value, "kWh", used)
        return BalanceLine(item, "electricity", fig.value, "kWh", tce, _share(tce, tot), fig.coverage)

    def carrier(ln: CarrierLine) -> BalanceLine:
        return BalanceLine(ITEM.get(ln.carrier, ln.carrier), ln.carrier, ln.amount, ln.unit, ln.tce,
                           _share(ln.tce, tot), ln.coverage)

    others = [carrier(ln) for ln in sorted(k.carbon.by_carrier, key=lambda ln: (ln.scope, ln.carrier))
              if not ln.carrier.startswith("electricity")]
    inputs = [elec("grid import", e.grid_import_kwh)]
    if w.model.meters_with_role("pv_generation"):
        inputs.append(elec("PV generation", e.pv_generation_kwh))
    inputs += others
    outputs = [elec("grid export", e.grid_export_kwh)]
    consumption = [elec("electricity consumed", e.consumption_kwh), *others]

    wh = k.waste_heat
    heat_tce = _tce(w, "heat", wh.recovered_gj.value, "GJ", used)
    recovered = BalanceLine("recovered waste heat", "heat", wh.recovered_gj.value, "GJ", heat_tce,
                            _share(heat_tce, tot), wh.recovered_gj.coverage, wh.basis, wh.note)

    notes = [
        f"tce by GB/T 2589-2020; electricity at the equivalent value (当量值) "
        f"{_value(_factor(used, 'tce', 'electricity'))}. Comprehensive energy consumption = inputs − "
        "outputs = Σ consumption.",
        "Recovered waste heat comes from energy already counted in the inputs, so it is not added to the "
        "total; it displaces boiler fuel or purchased heat that is then not bought.",
    ]
    if k.energy.tce_equal_value.value is not None:
        notes.append("total_tce_equal_value counts electricity at the site's equal value (等价值).")
    notes += _coverage_notes(w, [("Comprehensive energy consumption", total)])
    notes += k.notes
    return EnergyBalance(w.site, w.period, inputs, outputs, consumption,
                         elec("PV self-consumed", e.pv_self_consumed_kwh), recovered, total,
                         k.energy.tce_equal_value, _merge(k.factors, used), notes)


# --- green-factory indicators ----------------------------------------------------------------


@dataclass
class Indicator:
    key: str
    name: str
    name_zh: str | None
    value: float | None
    unit: str
    coverage: float
    formula: str
    note: str = ""


@dataclass
class GreenFactoryReport:
    site: ReportSite
    period: ReportPeriod
    indicators: list[Indicator]
    factors: list[Factor]
    notes: list[str]


def _per_unit(value: float | None, production: Figure) -> float | None:
    return value / production.value if value is not None and production.value else None


def green_factory_indicators(conn: sa.Connection, site_id: str, period: str = "month",
                             day: date | None = None, now: datetime | None = None) -> GreenFactoryReport:
    """The GB/T 36132-2025 quantitative indicators the site's meters support."""
    w = _window(conn, site_id, period, day, now)
    k = w.kpis
    e, c, en, wh = k.electricity, k.carbon, k.energy, k.waste_heat
    unit = en.production_unit
    cov_e = e.consumption_kwh.coverage
    renewable_kwh = sum(f.value or 0.0 for f in (e.pv_self_consumed_kwh, e.green_trade_kwh,
                                                 e.green_certificate_kwh))
    used: list[Factor] = []
    renewable_tce = _tce(w, "electricity", renewable_kwh, "kWh", used)
    renewable = renewable_tce / en.tce_total.value if renewable_tce is not None and en.tce_total.value \
        else None
    ind = [
        Indicator("energy_per_unit", "Comprehensive energy consumption per unit of product",
                  "单位产品综合能耗", en.tce_per_unit.value, en.tce_per_unit.unit, en.tce_per_unit.coverage,
                  "comprehensive energy consumption (GB/T 2589-2020, electricity at equivalent value) "
                  "× 1000 ÷ production"),
    ]
    if en.tce_equal_value.value is not None:
        per_unit_equal = _per_unit(en.tce_equal_value.value * 1000, en.production)
        ind.append(Indicator(
            "energy_per_unit_equal_value", "Comprehensive energy consumption per unit of product, "
            "electricity at equal value", "单位产品综合能耗（等价值）", per_unit_equal, f"kgce/{unit}",
            min(en.tce_equal_value.coverage, en.production.coverage),
            "comprehensive energy consumption with electricity at the site's equal value (等价值) "
            "× 1000 ÷ production"))
    ind += [
        Indicator("carbon_per_unit_location", "Carbon emissions per unit of product, location-based",
                  "单位产品碳排放量", c.per_unit_location_kg.value, c.per_unit_location_kg.unit,
                  c.per_unit_location_kg.coverage, "(Scope 1 + Scope 2 location-based) × 1000 ÷ production"),
        Indicator("carbon_per_unit_market", "Carbon emissions per unit of product, market-based",
                  "单位产品碳排放量", c.per_unit_market_kg.value, c.per_unit_market_kg.unit,
                  c.per_unit_market_kg.coverage, "(Scope 1 + Scope 2 market-based) × 1000 ÷ production"),
        Indicator("green_power_ratio", "Green-power ratio", "绿电占比", e.green_power_ratio.value, "ratio",
                  e.green_power_ratio.coverage,
                  "(PV self-consumed + green-power trades + green certificates) ÷ electricity consumption"),
        Indicator("self_sufficiency", "Electricity self-sufficiency", None, e.self_sufficiency.value, "ratio",
                  e.self_sufficiency.coverage, "1 − grid import ÷ electricity consumption"),
        Indicator("renewable_share", "Renewable share of comprehensive energy consumption", None, renewable,
                  "ratio", min(cov_e, en.tce_total.coverage),
                  "(PV self-consumed + green-power trades + green certificates) kWh × electricity tce "
                  "factor ÷ comprehensive energy consumption (tce)"),
        Indicator("waste_heat_recovered", "Waste heat recovered", "余热回收量", wh.recovered_gj.value, "GJ",
                  wh.recovered_gj.coverage,
                  "heat meter on the recovery loop, or compressor electricity × recovery share",
                  note=wh.note if wh.note.startswith(wh.basis) else f"{wh.basis}: {wh.note}"),
        Indicator("waste_heat_avoided_co2", "CO2 avoided by recovered waste heat", None,
                  wh.avoided_t_co2.value if wh.basis != "none" else None, "tCO2e", wh.avoided_t_co2.coverage,
                  f"recovered heat ÷ (boiler efficiency × NCV) × fuel factor, displacing {wh.displaces}"
                  if wh.displaces != "purchased_heat" else "recovered heat × 0.11 tCO2/GJ (purchased heat)",
                  note=wh.basis),
    ]
    notes = [
        "GB/T 36132-2025 scores each quantitative indicator against baseline and leading values for the "
        "sector. None are given here: the site sets the baseline.",
        "Water per unit of product is not reported: the KPI engine has no water figure yet.",
    ]
    if en.production.value is None:
        notes.append("No production counter: the per-unit indicators are empty.")
    notes += _coverage_notes(w, [("Electricity", e.consumption_kwh),
                                 ("Comprehensive energy consumption", en.tce_total)])
    notes += k.notes
    return GreenFactoryReport(w.site, w.period, ind, _merge(k.factors, used), notes)
