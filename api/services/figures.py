"""KPI formulas (DOMAIN.md) applied to a window's amounts: electricity balance, green power,
Scope 1 and 2, intensity, standard coal, waste-heat savings, compressors and boilers.

Every figure carries the coverage of the counters it was computed from, and every factor used
is listed with its source. A window that crosses New Year is computed per year with that
year's factors and summed (``combine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from api.factors import FUEL_BASIS, Factor, factor
from api.services import boilers, compressors
from api.services.amounts import Amount, SiteAmounts
from api.services.carbon import convert
from api.services.green import GreenAllocation
from api.services.site_model import SiteEnergyModel

KWH_GJ = 0.0036  # 1 kWh = 3.6 MJ


@dataclass
class Figure:
    value: float | None
    unit: str
    coverage: Annotated[float, Field(description="share of the window with data behind this figure, 0..1")]


def _fig(value: float | None, unit: str, *inputs: Amount | float) -> Figure:
    cov = [x.coverage if isinstance(x, Amount) else x for x in inputs]
    return Figure(value, unit, min(cov) if cov else 1.0)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


@dataclass
class Electricity:
    consumption_kwh: Figure
    grid_import_kwh: Figure
    grid_export_kwh: Figure
    pv_generation_kwh: Figure
    pv_self_consumed_kwh: Figure
    self_sufficiency: Annotated[Figure, Field(description="1 − grid import ÷ consumption")]
    self_consumption: Annotated[Figure, Field(description="1 − export ÷ PV generation")]
    green_trade_kwh: Figure
    green_certificate_kwh: Figure
    green_power_ratio: Annotated[Figure, Field(description=(
        "(PV self-consumed + green-power trades + green certificates) ÷ consumption"))]
    cost_cny: Annotated[Figure, Field(description="grid import at the site's tariff")]


@dataclass
class Carbon:
    scope1_t: Figure
    scope2_location_t: Figure
    scope2_market_t: Figure
    intensity_location_kg_per_kwh: Annotated[Figure, Field(description="Scope 2 electricity ÷ consumption")]
    intensity_market_kg_per_kwh: Figure
    per_unit_location_kg: Annotated[Figure, Field(description="Scope 1 + 2 (location) ÷ production")]
    per_unit_market_kg: Figure
    by_carrier: list[CarrierLine] = field(default_factory=list)


@dataclass
class CarrierLine:
    """One row of the inventory: a carrier, its amount and what it contributes."""

    carrier: str
    scope: Literal[1, 2]
    amount: float
    unit: str
    tco2e_location: float | None
    tco2e_market: float | None
    tce: float | None
    coverage: float


@dataclass
class Energy:
    tce_total: Annotated[Figure, Field(description="comprehensive energy consumption, GB/T 2589-2020")]
    tce_per_unit: Figure
    tce_equal_value: Annotated[Figure, Field(description=(
        "electricity at the site's equal value (等价值) instead of the equivalent value; null if unset"))]
    production: Figure
    production_unit: str


@dataclass
class WasteHeat:
    basis: Literal["measured", "estimated", "none"]
    recovered_gj: Figure
    displaces: str
    avoided_fuel: Figure
    avoided_t_co2: Figure
    avoided_tce: Figure
    saved_cny: Figure
    note: str = ""


@dataclass
class Compressor:
    meter_id: str
    energy_kwh: Figure
    air_m3: float | None
    specific_power_overall: Annotated[float | None, Field(description="kW/(m³/min), all running time")]
    specific_power_loaded: Annotated[float | None, Field(description="kW/(m³/min), fully loaded minutes")]
    gb19153_grade: int | None
    gb19153_limits: tuple[float, float, float] | None
    load_ratio: float | None
    note: str = ""


@dataclass
class Boiler:
    meter_id: str
    fuel: str
    fuel_m3: Figure
    steam_t: Figure | None
    efficiency: float | None
    gb24500_grade: int | None
    note: str = ""


@dataclass
class Totals:
    """Additive per-year pieces, before ratios are taken."""

    scope1: float = 0.0
    s2_loc: float = 0.0
    s2_mkt: float = 0.0
    s2_elec_loc: float = 0.0
    s2_elec_mkt: float = 0.0
    tce: float = 0.0
    tce_equal: float | None = None
    avoided_fuel: float = 0.0
    avoided_co2: float = 0.0
    avoided_tce: float = 0.0
    lines: dict[tuple[str, int], CarrierLine] = field(default_factory=dict)
    factors: dict[str, Factor] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _line(t: Totals, carrier: str, scope: Literal[1, 2], amount: float, unit: str,
          loc: float | None, mkt: float | None, tce: float | None, coverage: float) -> None:
    key = (carrier, scope)
    old = t.lines.get(key)
    if old is None:
        t.lines[key] = CarrierLine(carrier, scope, amount, unit, loc, mkt, tce, coverage)
        return
    add = lambda x, y: None if x is None or y is None else x + y  # noqa: E731
    t.lines[key] = CarrierLine(carrier, scope, old.amount + amount, unit, add(old.tco2e_location, loc),
                               add(old.tco2e_market, mkt), add(old.tce, tce), min(old.coverage, coverage))


def piece(model: SiteEnergyModel, am: SiteAmounts, green: GreenAllocation, year: int,
          t: Totals, recovered_gj: float) -> None:
    """Add one single-year piece of a window to ``t``."""
    p, site = model.params, model.site
    overrides = model.overrides_for(year)
    kw: dict = {"factor_set": model.factor_set, "year": year, "overrides": overrides}

    def used(f: Factor) -> Factor:
        t.factors[f.key] = f
        return f

    def conv(carrier: str, amount: float, unit: str, **extra: object):
        c = convert(carrier, max(amount, 0.0), unit, **{**kw, **extra})
        for f in c.factors:
            if carrier != "electricity" or f.kind != "tce":  # electricity tce is taken below
                used(f)
        t.notes.extend(n for n in c.notes if n not in t.notes and not n.startswith("tce by equivalent"))
        return c

    # Scope 2, electricity: location on grid import; market on import less contractual green power.
    imp = am.grid_import_kwh.value
    loc = conv("electricity", imp, "kWh", region=site.grid_region)
    trade, gec = green_used(am, green)
    mkt = conv("electricity", max(imp - trade - gec, 0.0), "kWh", basis="market")
    t.s2_elec_loc += loc.tco2e or 0.0
    t.s2_elec_mkt += mkt.tco2e or 0.0
    # GB/T 2589 counts the energy the site consumed, including PV it generated and used itself:
    # bought electricity on its line, self-consumed PV on its own line with no emissions.
    consumed = max(am.consumption_kwh, 0.0)
    e_tce = used(factor(model.factor_set, "tce", "electricity", year, overrides))
    kgce = e_tce.value / 1000.0  # kgce/kWh → tce/kWh
    bought, own = min(imp, consumed), max(consumed - imp, 0.0)
    _line(t, "electricity", 2, imp, "kWh", loc.tco2e, mkt.tco2e, bought * kgce, am.grid_import_kwh.coverage)
    if own > 0:
        _line(t, "electricity_pv_self_consumed", 2, own, "kWh", 0.0, 0.0, own * kgce, am.electricity_coverage)
    t.tce += consumed * kgce
    if p.electricity_equal_value_kgce_per_kwh is not None:
        t.tce_equal = (t.tce_equal or 0.0) + consumed * p.electricity_equal_value_kgce_per_kwh / 1000.0

    gas_tce = None
    if p.natural_gas_origin == "oil_field" and "tce:natural_gas" not in overrides:
        # The site's own override wins; otherwise oil-field gas takes GB/T 2589's oil-field value.
        f = factor(model.factor_set, "tce", "natural_gas_oil_field")
        gas_tce = Factor(f.value, f.unit, None, None, f.source, key=f.key, kind="tce", subject="natural_gas")
    fuel_overrides = overrides if gas_tce is None else {**overrides, "tce:natural_gas": gas_tce}
    for fuel, amount in am.fuels.items():
        c = conv(fuel, amount.value, "m3", overrides=fuel_overrides)
        t.scope1 += c.tco2e or 0.0
        t.tce += c.tce or 0.0
        _line(t, fuel, 1, amount.value, "m3", c.tco2e, c.tco2e, c.tce, amount.coverage)
    for carrier, amount, unit in (("heat", am.purchased_heat_gj, "GJ"), ("steam", am.purchased_steam_t, "t")):
        if amount.meters == 0:
            continue
        c = conv(carrier, amount.value, unit, steam_convention=p.steam_convention)
        t.s2_loc += c.tco2e or 0.0
        t.s2_mkt += c.tco2e or 0.0
        t.tce += c.tce or 0.0
        _line(t, carrier, 2, amount.value, unit, c.tco2e, c.tco2e, c.tce, amount.coverage)

    # Waste heat displaces boiler fuel (or purchased heat): DOMAIN.md.
    if recovered_gj > 0:
        if p.heat_recovery.displaces == "purchased_heat":
            c = conv("heat", recovered_gj, "GJ")
            t.avoided_fuel += recovered_gj
        else:
            fuel = p.boiler_fuel
            ncv = p.gas_ncv_gj_per_10k_m3 / 1e4 if fuel == "natural_gas" else FUEL_BASIS[fuel].ncv
            avoided = recovered_gj / (p.boiler_efficiency * ncv)
            t.avoided_fuel += avoided
            c = conv(fuel, avoided, "m3" if fuel == "natural_gas" else "t")
        t.avoided_co2 += c.tco2e or 0.0
        t.avoided_tce += c.tce or 0.0


def recovered_heat(model: SiteEnergyModel, am: SiteAmounts) -> tuple[str, Amount, str]:
    """Measured heat if a heat-recovery meter reports, else the compressor-energy estimate."""
    if am.recovered_heat_gj.meters > 0 and am.recovered_heat_gj.coverage > 0:
        return "measured", am.recovered_heat_gj, "from the heat meter(s) on the recovery loop"
    if am.compressors:
        share = model.params.heat_recovery.estimated_share
        kwh = sum(c.energy_kwh.value for c in am.compressors)
        cov = min(c.energy_kwh.coverage for c in am.compressors)
        return ("estimated", Amount(kwh * KWH_GJ * share, cov, len(am.compressors)),
                f"estimated: compressor electrical energy × recovery share {share:g} "
                "(DOMAIN.md default 0.75)")
    return "none", Amount(), "no heat-recovery meter and no compressor on this site"


def green_used(am: SiteAmounts, green: GreenAllocation) -> tuple[float, float]:
    """(trade, certificate) kWh that count: contractual green power cannot make a window
    greener than 100 %, so it is capped at the consumption PV did not already cover.

    ``green.allocate`` already keeps within that piece by piece; the cap here only guards a
    window whose pieces' balances do not add up to its own (export above PV in some piece)."""
    room = am.grid_supplied_kwh
    scale = min(1.0, room / green.total_kwh) if green.total_kwh > 0 else 1.0
    return green.trade_kwh * scale, green.gec_kwh * scale


@dataclass(frozen=True)
class UnitRates:
    """tCO2e per canonical unit of each metered carrier in one year, through ``convert`` with
    the site's factor set, the year's factors and the site's overrides — what ``piece`` applies
    to a window's amounts, for a series that applies it to each bucket's."""

    natural_gas_t_per_m3: float
    grid_location_t_per_kwh: float
    grid_market_t_per_kwh: float
    heat_t_per_gj: float
    steam_t_per_t: float


def unit_rates(model: SiteEnergyModel, year: int) -> UnitRates:
    kw: dict = {"factor_set": model.factor_set, "year": year, "overrides": model.overrides_for(year)}
    per = lambda carrier, unit, **extra: convert(carrier, 1.0, unit, **kw, **extra).tco2e or 0.0  # noqa: E731
    return UnitRates(
        natural_gas_t_per_m3=per("natural_gas", "m3"),
        grid_location_t_per_kwh=per("electricity", "kWh", region=model.site.grid_region),
        grid_market_t_per_kwh=per("electricity", "kWh", basis="market"),
        heat_t_per_gj=per("heat", "GJ"),
        steam_t_per_t=per("steam", "t", steam_convention=model.params.steam_convention),
    )


def electricity(model: SiteEnergyModel, am: SiteAmounts, green: GreenAllocation) -> Electricity:
    imp, exp, pv = am.grid_import_kwh, am.grid_export_kwh, am.pv_kwh
    cons = am.consumption_kwh
    cov = am.electricity_coverage
    self_used = am.pv_self_consumed_kwh
    trade, gec = green_used(am, green)
    self_suff = 1 - imp.value / cons if cons > 0 else None
    self_cons = 1 - exp.value / pv.value if pv.value > 0 else None
    tariff = model.params.tariff
    cost = imp.value * tariff.flat_cny_per_kwh if tariff.flat_cny_per_kwh is not None else None
    return Electricity(
        consumption_kwh=_fig(cons, "kWh", cov),
        grid_import_kwh=_fig(imp.value, "kWh", imp),
        grid_export_kwh=_fig(exp.value, "kWh", exp),
        pv_generation_kwh=_fig(pv.value, "kWh", pv),
        pv_self_consumed_kwh=_fig(self_used, "kWh", pv, exp),
        self_sufficiency=_fig(self_suff, "ratio", cov),
        self_consumption=_fig(self_cons, "ratio", pv, exp),
        green_trade_kwh=_fig(trade, "kWh", cov),
        green_certificate_kwh=_fig(gec, "kWh", cov),
        green_power_ratio=_fig(_ratio(self_used + trade + gec, cons), "ratio", cov),
        cost_cny=_fig(cost, "CNY", imp),
    )


def compressor(c, params) -> Compressor:
    sp_all = (c.energy_kwh.value / (c.air_m3 / 60.0)) if c.air_m3 else None  # kWh/(m³/60) = kW/(m³/min)
    sp_loaded = c.loaded_kw / c.loaded_flow_m3min if c.loaded_kw and c.loaded_flow_m3min else None
    grade, limits, note = None, None, ""
    spec = params.compressor if params is not None else None
    if spec is None:
        note = "no nameplate (params.compressor): not graded"
    else:
        limits = compressors.grade_limits(spec)
        if limits is None:
            note = (f"no GB 19153-2019 row for {spec.rated_kw:g} kW at {spec.pressure_mpa:g} MPa "
                    f"({spec.kind}, {spec.speed} speed, {spec.cooling}-cooled) in the library")
        elif sp_loaded is not None:
            grade = compressors.grade(sp_loaded, limits).grade
            if grade is None:
                note = "specific power worse than grade 3 (below the minimum allowable value)"
    return Compressor(c.meter_id, _fig(c.energy_kwh.value, "kWh", c.energy_kwh), c.air_m3, sp_all,
                      sp_loaded, grade, limits, compressors.load_ratio(c.loaded_h.value, c.running_h.value),
                      note)


def boiler(model: SiteEnergyModel, b, preheat_gj: float) -> Boiler:
    p = model.params
    params = next((m.params for m in model.meters if m.id == b.meter_id), None)
    out = params.boiler_output if params is not None and params.boiler_output else None
    if out is None:
        out_meter = next((m for m in model.meters_with_role("boiler_output") if m.params.boiler_output), None)
        out = out_meter.params.boiler_output if out_meter else None
    steam = _fig(b.steam_t.value, "t", b.steam_t) if b.steam_t is not None and b.steam_t.meters else None
    if out is None or steam is None:
        return Boiler(b.meter_id, b.fuel, _fig(b.fuel_amount.value, "m3", b.fuel_amount), steam, None, None,
                      "needs steam output and params.boiler_output (steam pressure, feedwater temperature)")
    h_s = boilers.steam_enthalpy(out.steam_pressure_mpa_abs)
    if h_s is None:
        return Boiler(b.meter_id, b.fuel, _fig(b.fuel_amount.value, "m3", b.fuel_amount), steam, None, None,
                      f"steam pressure {out.steam_pressure_mpa_abs} MPa is outside the enthalpy table")
    fuel_gj = b.fuel_amount.value * p.gas_ncv_gj_per_10k_m3 / 1e4
    eff = boilers.efficiency(steam.value or 0.0, h_s, boilers.water_enthalpy(out.feedwater_c), fuel_gj,
                             preheat_gj)
    note = "direct method; recovered heat that preheats the feedwater is not counted as boiler output" \
        if preheat_gj > 0 else "direct method"
    return Boiler(b.meter_id, b.fuel, _fig(b.fuel_amount.value, "m3", b.fuel_amount), steam, eff,
                  boilers.gb24500_grade(eff) if eff is not None else None, note)


def carbon(model: SiteEnergyModel, am: SiteAmounts, t: Totals) -> Carbon:
    cov_e = am.electricity_coverage
    fuel_cov = min([a.coverage for a in am.fuels.values()] or [1.0])
    heat_cov = min(am.purchased_heat_gj.coverage, am.purchased_steam_t.coverage)
    s2_cov = min(am.grid_import_kwh.coverage, heat_cov)
    all_cov = min(cov_e, fuel_cov, heat_cov, am.production.coverage)
    s2_loc, s2_mkt = t.s2_elec_loc + t.s2_loc, t.s2_elec_mkt + t.s2_mkt
    cons = am.consumption_kwh
    per_kwh = lambda t_co2: t_co2 * 1000 / cons if cons > 0 else None  # noqa: E731
    per_unit = lambda t_co2: _per_unit(t_co2 * 1000, am.production)  # noqa: E731
    unit = f"kgCO2e/{model.params.production_unit}"
    return Carbon(
        scope1_t=Figure(t.scope1, "tCO2e", fuel_cov),
        scope2_location_t=Figure(s2_loc, "tCO2e", s2_cov),
        scope2_market_t=Figure(s2_mkt, "tCO2e", s2_cov),
        intensity_location_kg_per_kwh=Figure(per_kwh(t.s2_elec_loc), "kgCO2e/kWh", cov_e),
        intensity_market_kg_per_kwh=Figure(per_kwh(t.s2_elec_mkt), "kgCO2e/kWh", cov_e),
        per_unit_location_kg=Figure(per_unit(t.scope1 + s2_loc), unit, all_cov),
        per_unit_market_kg=Figure(per_unit(t.scope1 + s2_mkt), unit, all_cov),
        by_carrier=list(t.lines.values()),
    )


def _per_unit(value: float, production: Amount) -> float | None:
    return value / production.value if production.meters and production.value > 0 else None


def energy(model: SiteEnergyModel, am: SiteAmounts, t: Totals) -> Energy:
    fuel_cov = min([a.coverage for a in am.fuels.values()] or [1.0])
    cov = min(am.electricity_coverage, fuel_cov, am.purchased_heat_gj.coverage,
              am.purchased_steam_t.coverage)
    unit = model.params.production_unit
    prod = am.production
    equal = None
    if t.tce_equal is not None:
        electricity_tce = sum(ln.tce or 0.0 for ln in t.lines.values() if ln.carrier == "electricity")
        equal = t.tce - electricity_tce + t.tce_equal
    return Energy(
        tce_total=Figure(t.tce, "tce", cov),
        tce_per_unit=Figure(_per_unit(t.tce * 1000, prod), f"kgce/{unit}", min(cov, prod.coverage)),
        tce_equal_value=Figure(equal, "tce", cov),
        production=Figure(prod.value if prod.meters else None, unit, prod.coverage),
        production_unit=unit,
    )


def waste_heat(model: SiteEnergyModel, t: Totals, basis: str, heat: Amount, note: str) -> WasteHeat:
    p = model.params
    to_heat = p.heat_recovery.displaces == "purchased_heat"
    unit = "GJ" if to_heat else ("m3" if p.boiler_fuel == "natural_gas" else "t")
    priced = not to_heat and p.boiler_fuel == "natural_gas" and p.gas_price_cny_per_m3 is not None
    saved = t.avoided_fuel * p.gas_price_cny_per_m3 if priced else None  # type: ignore[operator]
    if not priced and not to_heat and basis != "none":
        note += "; no gas price set, so no money figure"
    return WasteHeat(
        basis=basis,  # type: ignore[arg-type]
        recovered_gj=Figure(heat.value if basis != "none" else None, "GJ", heat.coverage),
        displaces="purchased_heat" if to_heat else p.boiler_fuel,
        avoided_fuel=Figure(t.avoided_fuel, unit, heat.coverage),
        avoided_t_co2=Figure(t.avoided_co2, "tCO2e", heat.coverage),
        avoided_tce=Figure(t.avoided_tce, "tce", heat.coverage),
        saved_cny=Figure(saved, "CNY", heat.coverage),
        note=note,
    )
