"""KPI formulas (docs/domain.md) applied to a window's amounts: electricity balance, green power,
Scope 1 and 2, intensity, standard coal, waste-heat savings, compressors and boilers.

Every figure carries the coverage of the counters it was computed from, and every factor used
is listed with its source. A window that crosses New Year is computed per year with that
year's factors and summed (``combine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from lingtan.core import boilers, compressors, gas
from lingtan.core.amounts import Amount, CompressorAmounts, SiteAmounts
from lingtan.core.carbon import convert
from lingtan.core.factors import FUEL_BASIS, Factor, factor
from lingtan.core.green import GreenAllocation
from lingtan.core.site_model import SiteEnergyModel
from lingtan.core.site_schema import MeterParams
from lingtan.core.tariff import BandCost, total

KWH_GJ = 0.0036  # 1 kWh = 3.6 MJ

# A share that its formula keeps in [0, 1] (self-sufficiency, self-consumption, green-power
# ratio, load ratio) can land a hair outside when its inputs are sums of counter deltas: meters
# send counters as float32 registers, whose last bit is ~6e-8 of the reading (0.016 kWh at
# 182,000 kWh), so over a window of modest consumption a share of 0 can read -4e-6. Up to
# SHARE_NOISE outside the range that is rounding, and the share is clamped to it; further out the
# meters really disagree (more export than PV generation, a role on the wrong meter), and the
# figure is left as computed so that the fault shows. See docs/domain.md, "Shares".
SHARE_NOISE = 1e-4  # 0.01 percentage points: a tenth of the last digit tiles and reports show (0.1 %)


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


def share(x: float | None) -> float | None:
    """A ratio that is in [0, 1] by its formula, with rounding noise at the ends removed
    (``SHARE_NOISE``); a value further outside is returned unchanged."""
    if x is None:
        return None
    if -SHARE_NOISE <= x < 0.0:
        return 0.0
    if 1.0 < x <= 1.0 + SHARE_NOISE:
        return 1.0
    return x


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
    cost_cny: Annotated[Figure, Field(description=(
        "grid import at the site's tariff: each time-of-use band at its price (site-local time), "
        "the flat price where no band applies; null if a price needed is not set"))]
    green_allocation: Annotated[Literal["none", "consumption", "elapsed_time", "mixed"], Field(description=(
        "how green purchases were allocated to this window: evenly over a closed period's consumption, "
        "by time elapsed in a period still running, or both (mixed)"))] = "none"
    cost_by_band: Annotated[list[BandCost], Field(description=(
        "grid import kWh and cost per time-of-use band; empty when the tariff has no bands"))] = field(
        default_factory=list)


# Scope 2 electricity bases (docs/domain.md "Scope 2 basis"): the GHG Protocol counts gross
# purchases; GB/T 32150-2015 and the MEE sector guidelines subtract exported electricity.
GROSS = "gross: grid import × factor (GHG Protocol Scope 2 Guidance)"
NET = ("net purchased: (grid import − grid export) × factor (GB/T 32150-2015, MEE sector guidelines); "
       "negative when the site exports more than it imports")
MARKET = "; market-based: contractual green power deducted first, not below 0, × national residual mix"
SCOPE2_BASES = {
    "scope2_location_t": GROSS, "scope2_market_t": GROSS + MARKET,
    "scope2_location_net_t": NET, "scope2_market_net_t": NET + MARKET,
    "scope12_location_t": f"Scope 1 + Scope 2 {GROSS}",
    "scope12_market_t": f"Scope 1 + Scope 2 {GROSS}{MARKET}",
    "scope12_location_net_t": f"Scope 1 + Scope 2 {NET}",
    "scope12_market_net_t": f"Scope 1 + Scope 2 {NET}{MARKET}",
}


@dataclass
class Carbon:
    scope1_t: Figure
    scope2_location_t: Annotated[Figure, Field(description=f"location-based, {GROSS}; + purchased heat")]
    scope2_market_t: Annotated[Figure, Field(description=f"market-based, {GROSS}{MARKET}; + purchased heat")]
    intensity_location_kg_per_kwh: Annotated[Figure, Field(description=(
        "Scope 2 electricity (gross) ÷ consumption"))]
    intensity_market_kg_per_kwh: Figure
    per_unit_location_kg: Annotated[Figure, Field(description="Scope 1 + 2 (location, gross) ÷ production")]
    per_unit_market_kg: Figure
    scope2_location_net_t: Annotated[Figure, Field(description=f"location-based, {NET}; + purchased heat")]
    scope2_market_net_t: Annotated[Figure, Field(description=(
        f"market-based, {NET}{MARKET}; + purchased heat"))]
    scope12_location_t: Annotated[Figure, Field(description=(
        "Scope 1 + Scope 2 location-based (gross): the dashboard's carbon tile"))]
    scope12_market_t: Annotated[Figure, Field(description="Scope 1 + Scope 2 market-based (gross)")]
    scope12_location_net_t: Annotated[Figure, Field(description=(
        "Scope 1 + Scope 2 location-based, net purchased electricity"))]
    scope12_market_net_t: Annotated[Figure, Field(description=(
        "Scope 1 + Scope 2 market-based, net purchased electricity"))]
    by_carrier: list[CarrierLine] = field(default_factory=list)
    scope2_bases: Annotated[dict[str, str], Field(description=(
        "the electricity basis of each Scope 2 and Scope 1+2 figure, by field name"))] = field(
        default_factory=lambda: dict(SCOPE2_BASES))


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
    source: Annotated[Literal["meters", "activity data"], Field(description=(
        "meters, or activity data entered by hand from invoices and ledgers"))] = "meters"
    evidence: Annotated[list[str], Field(description="activity data: the invoice or ledger references")] = \
        field(default_factory=list)


@dataclass
class Energy:
    tce_total: Annotated[Figure, Field(description="comprehensive energy consumption, GB/T 2589-2020")]
    tce_per_unit: Figure
    tce_equal_value: Annotated[Figure, Field(description=(
        "net purchased electricity (grid import − export, not below 0) at the site's equal value (等价值), "
        "the rest of the electricity consumed (own PV) once at the equivalent value; null if unset"))]
    production: Figure
    production_unit: str


@dataclass
class WasteHeat:
    basis: Literal["measured", "estimated", "none"]
    recovered_gj: Figure
    displaces: Annotated[str, Field(description=(
        "boiler fuel (e.g. natural_gas), purchased_heat, or none: no recovery declared"))]
    avoided_fuel: Annotated[Figure, Field(description=(
        "in the gas meters' m³ (what the gas price is paid per), or GJ of purchased heat; "
        "null when no saving is claimed"))]
    avoided_t_co2: Figure
    avoided_tce: Figure
    saved_cny: Figure
    note: str = ""
    declared: Annotated[bool, Field(description=(
        "the site declared the recovery (energy.heat_recovery); without it no saving is claimed"))] = False
    use: Annotated[str | None, Field(description=(
        "where the recovered heat goes: boiler_feedwater, space_heating or domestic_hot_water"))] = None


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
    gb19153_row: Annotated[str | None, Field(description=(
        "the table row and pressure column that govern the machine, e.g. '37 kW, 0.8 MPa'"))] = None
    gb19153_source: Annotated[str | None, Field(description="where the limits come from")] = None


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
    s2_elec_loc_net: float = 0.0
    s2_elec_mkt_net: float = 0.0
    tce: float = 0.0
    tce_electricity: float = 0.0
    tce_equal_electricity: float | None = None
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
    # Net purchased electricity (GB/T 32150-2015): export is subtracted at the same factor, and
    # contractual green power covers only what is left of a positive net purchase.
    exp = am.grid_export_kwh.value
    net = imp - exp
    t.s2_elec_loc_net += (loc.tco2e or 0.0) - (conv("electricity", exp, "kWh", region=site.grid_region).tco2e
                                               or 0.0)
    net_mkt = max(net - trade - gec, 0.0) if net > 0 else net
    sign = 1.0 if net_mkt >= 0 else -1.0
    t.s2_elec_mkt_net += sign * (conv("electricity", abs(net_mkt), "kWh", basis="market").tco2e or 0.0)
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
    t.tce_electricity += consumed * kgce
    if p.electricity_equal_value_kgce_per_kwh is not None:
        # Equal value (docs/domain.md): the plant coal rate behind it applies to electricity taken
        # from the grid, net of what the site sent back (import − export, not below 0); the rest
        # of what the site consumed is its own PV, counted once at the equivalent value — it
        # burned no coal. So every kWh consumed is counted exactly once.
        from_grid = min(max(imp - am.grid_export_kwh.value, 0.0), consumed)
        t.tce_equal_electricity = (t.tce_equal_electricity or 0.0) + (
            from_grid * p.electricity_equal_value_kgce_per_kwh / 1000.0 + (consumed - from_grid) * kgce)

    # Natural gas: metered m³ → Nm³, with CO2 and tce at the site's one NCV (lingtan.core.gas).
    basis = gas.gas_basis(p)
    gas_overrides = {**overrides, **gas.factors(p, site.id, model.factor_set, year, overrides)}
    if am.fuels:
        note = basis.note()
        if note not in t.notes:
            t.notes.append(note)
    for fuel, amount in am.fuels.items():
        nm3 = basis.nm3(amount.value) if fuel == "natural_gas" else amount.value
        c = conv(fuel, nm3, "m3", overrides=gas_overrides)
        t.scope1 += c.tco2e or 0.0
        t.tce += c.tce or 0.0
        _line(t, fuel, 1, nm3, "Nm3" if fuel == "natural_gas" else "m3", c.tco2e, c.tco2e, c.tce,
              amount.coverage)
    for carrier, amount, unit in (("heat", am.purchased_heat_gj, "GJ"), ("steam", am.purchased_steam_t, "t")):
        if amount.meters == 0:
            continue
        c = conv(carrier, amount.value, unit, steam_convention=p.steam_convention)
        t.s2_loc += c.tco2e or 0.0
        t.s2_mkt += c.tco2e or 0.0
        t.tce += c.tce or 0.0
        _line(t, carrier, 2, amount.value, unit, c.tco2e, c.tco2e, c.tce, amount.coverage)

    # Declared recovered heat displaces boiler fuel or purchased heat (docs/domain.md).
    if recovered_gj > 0:
        if p.heat_recovery.displaces == "purchased_heat":
            c = conv("heat", recovered_gj, "GJ")
            t.avoided_fuel += recovered_gj
        elif p.boiler_fuel == "natural_gas":
            # Avoided gas in the meters' m³ (what the gas price is paid per); CO2 and tce per Nm³.
            nm3 = recovered_gj / (p.boiler_efficiency * basis.ncv_gj_per_nm3)
            t.avoided_fuel += basis.metered(nm3)
            c = conv("natural_gas", nm3, "m3", overrides=gas_overrides)
        else:
            avoided = recovered_gj / (p.boiler_efficiency * FUEL_BASIS[p.boiler_fuel].ncv)
            t.avoided_fuel += avoided
            c = conv(p.boiler_fuel, avoided, "t")
        t.avoided_co2 += c.tco2e or 0.0
        t.avoided_tce += c.tce or 0.0


@dataclass
class RecoveredHeat:
    basis: Literal["measured", "estimated", "none"]
    heat: Amount
    note: str
    claimed: bool  # the site declared the recovery, so the heat may be counted as a saving


NOT_DECLARED = ("no saving claimed: heat recovery is not declared (energy.heat_recovery: the compressors "
                "it is installed on, where the heat goes and what it displaces)")


def recovered_heat(model: SiteEnergyModel, am: SiteAmounts) -> RecoveredHeat:
    """Measured heat if a heat-recovery meter reports, else the estimate from the compressors the
    recovery is declared on; nothing is a saving until the site declares the recovery."""
    hr = model.params.heat_recovery
    metered = am.recovered_heat_gj.meters > 0 and am.recovered_heat_gj.coverage > 0
    if not hr.declared:
        if metered:
            return RecoveredHeat("measured", am.recovered_heat_gj,
                                 f"measured by the heat meter(s) on the recovery loop; {NOT_DECLARED}", False)
        if am.compressors:
            return RecoveredHeat("none", Amount(), NOT_DECLARED, False)
        return RecoveredHeat("none", Amount(), "no heat-recovery meter and no compressor on this site", False)
    if metered:
        return RecoveredHeat("measured", am.recovered_heat_gj, "from the heat meter(s) on the recovery loop",
                             True)
    fitted = [c for c in am.compressors if c.meter_id in hr.compressors]
    if not fitted:
        return RecoveredHeat("none", Amount(), f"heat recovery is declared on {', '.join(hr.compressors)}, "
                             "which this site has no compressor meter for", False)
    share = hr.estimated_share
    kwh = sum(c.energy_kwh.value for c in fitted)
    cov = min(c.energy_kwh.coverage for c in fitted)
    names = ", ".join(c.meter_id for c in fitted)
    return RecoveredHeat("estimated", Amount(kwh * KWH_GJ * share, cov, len(fitted)),
                         f"estimated: electrical energy of {names} (where the recovery is installed) × "
                         f"recovery share {share:g} (docs/domain.md default 0.75)", True)


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
    overrides = model.overrides_for(year)
    kw: dict = {"factor_set": model.factor_set, "year": year, "overrides": overrides}
    per = lambda carrier, unit, **extra: convert(carrier, 1.0, unit, **{**kw, **extra}).tco2e or 0.0  # noqa: E731
    # natural gas per metered m³, at the site's one heating value and meter conditions, as ``piece``
    site_gas = gas.factors(model.params, model.site.id, model.factor_set, year, overrides)
    per_nm3 = per("natural_gas", "m3", overrides={**overrides, **site_gas})
    return UnitRates(
        natural_gas_t_per_m3=per_nm3 * gas.gas_basis(model.params).nm3(1.0),
        grid_location_t_per_kwh=per("electricity", "kWh", region=model.site.grid_region),
        grid_market_t_per_kwh=per("electricity", "kWh", basis="market"),
        heat_t_per_gj=per("heat", "GJ"),
        steam_t_per_t=per("steam", "t", steam_convention=model.params.steam_convention),
    )


def electricity(model: SiteEnergyModel, am: SiteAmounts, green: GreenAllocation,
                costs: list[BandCost] | None = None) -> Electricity:
    """``costs``: grid import priced per time-of-use band (``tariff.cost_by_band``), when the site's
    tariffs have bands or validity dates; otherwise grid import is priced at the flat price."""
    imp, exp, pv = am.grid_import_kwh, am.grid_export_kwh, am.pv_kwh
    cons = am.consumption_kwh
    cov = am.electricity_coverage
    self_used = am.pv_self_consumed_kwh
    trade, gec = green_used(am, green)
    self_suff = share(1 - imp.value / cons) if cons > 0 else None
    self_cons = share(1 - exp.value / pv.value) if pv.value > 0 else None
    flat = model.params.tariff.flat_cny_per_kwh
    bands: list[BandCost] = costs or []
    cost = total(costs) if costs is not None else (imp.value * flat if flat is not None else None)
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
        green_power_ratio=_fig(share(_ratio(self_used + trade + gec, cons)), "ratio", cov),
        cost_cny=_fig(cost, "CNY", imp),
        green_allocation=green.method,
        cost_by_band=bands,
    )


def compressor(c: CompressorAmounts, params: MeterParams | None) -> Compressor:
    sp_all = (c.energy_kwh.value / (c.air_m3 / 60.0)) if c.air_m3 else None  # kWh/(m³/60) = kW/(m³/min)
    sp_loaded = c.loaded_kw / c.loaded_flow_m3min if c.loaded_kw and c.loaded_flow_m3min else None
    grade, limits, note, band, source = None, None, "", None, None
    spec = params.compressor if params is not None else None
    if spec is None:
        note = "no nameplate (params.compressor): not graded"
    else:
        found = compressors.lookup(spec)
        band = found.band or None
        if found.row is None:
            note = found.reason
        else:
            limits, source = found.row.limits, found.row.source
            note = f"graded in the GB 19153-2019 row {found.band} (nearest rated power, its pressure band)"
            if sp_loaded is not None:
                grade = compressors.grade(sp_loaded, limits).grade
                if grade is None:
                    note += "; specific power worse than grade 3 (below the minimum allowable value)"
    load = share(compressors.load_ratio(c.loaded_h.value, c.running_h.value))
    return Compressor(c.meter_id, _fig(c.energy_kwh.value, "kWh", c.energy_kwh), c.air_m3, sp_all,
                      sp_loaded, grade, limits, load, note, band, source)


def boiler(model: SiteEnergyModel, b, preheat_gj: float, unmetered_preheat: bool = False) -> Boiler:
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
    fuel_gj = gas.gas_basis(p).gj(b.fuel_amount.value)
    eff = boilers.efficiency(steam.value or 0.0, h_s, boilers.water_enthalpy(out.feedwater_c), fuel_gj,
                             preheat_gj)
    note = "direct method; recovered heat that preheats the feedwater is not counted as boiler output" \
        if preheat_gj > 0 else "direct method"
    if unmetered_preheat:
        note += ("; recovered heat preheats the feedwater but is not metered, so the efficiency counts "
                 "that preheat as boiler output (overstated)")
    return Boiler(b.meter_id, b.fuel, _fig(b.fuel_amount.value, "m3", b.fuel_amount), steam, eff,
                  boilers.gb24500_grade(eff) if eff is not None else None, note)


def carbon(model: SiteEnergyModel, am: SiteAmounts, t: Totals) -> Carbon:
    cov_e = am.electricity_coverage
    fuel_cov = min([a.coverage for a in am.fuels.values()] or [1.0])
    heat_cov = min(am.purchased_heat_gj.coverage, am.purchased_steam_t.coverage)
    s2_cov = min(am.grid_import_kwh.coverage, heat_cov)
    all_cov = min(cov_e, fuel_cov, heat_cov, am.production.coverage)
    s2_loc, s2_mkt = t.s2_elec_loc + t.s2_loc, t.s2_elec_mkt + t.s2_mkt
    s2_loc_net, s2_mkt_net = t.s2_elec_loc_net + t.s2_loc, t.s2_elec_mkt_net + t.s2_mkt
    net_cov = min(s2_cov, am.grid_export_kwh.coverage)
    s12_cov, s12_net_cov = min(fuel_cov, s2_cov), min(fuel_cov, net_cov)
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
        scope2_location_net_t=Figure(s2_loc_net, "tCO2e", net_cov),
        scope2_market_net_t=Figure(s2_mkt_net, "tCO2e", net_cov),
        scope12_location_t=Figure(t.scope1 + s2_loc, "tCO2e", s12_cov),
        scope12_market_t=Figure(t.scope1 + s2_mkt, "tCO2e", s12_cov),
        scope12_location_net_t=Figure(t.scope1 + s2_loc_net, "tCO2e", s12_net_cov),
        scope12_market_net_t=Figure(t.scope1 + s2_mkt_net, "tCO2e", s12_net_cov),
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
    if t.tce_equal_electricity is not None:
        equal = t.tce - t.tce_electricity + t.tce_equal_electricity
    return Energy(
        tce_total=Figure(t.tce, "tce", cov),
        tce_per_unit=Figure(_per_unit(t.tce * 1000, prod), f"kgce/{unit}", min(cov, prod.coverage)),
        tce_equal_value=Figure(equal, "tce", cov),
        production=Figure(prod.value if prod.meters else None, unit, prod.coverage),
        production_unit=unit,
    )


def waste_heat(model: SiteEnergyModel, t: Totals, r: RecoveredHeat) -> WasteHeat:
    p, hr = model.params, model.params.heat_recovery
    heat, note = r.heat, r.note
    to_heat = hr.displaces == "purchased_heat"
    unit = "GJ" if to_heat else ("m3" if p.boiler_fuel == "natural_gas" else "t")
    recovered = Figure(heat.value if r.basis != "none" else None, "GJ", heat.coverage)
    if not r.claimed:
        none = lambda unit: Figure(None, unit, heat.coverage)  # noqa: E731
        return WasteHeat(r.basis, recovered, "none", none(unit), none("tCO2e"), none("tce"), none("CNY"),
                         note, declared=hr.declared, use=hr.use)
    priced = not to_heat and p.boiler_fuel == "natural_gas" and p.gas_price_cny_per_m3 is not None
    saved = t.avoided_fuel * p.gas_price_cny_per_m3 if priced else None  # type: ignore[operator]
    if not priced and not to_heat:
        note += "; no gas price set, so no money figure"
    return WasteHeat(
        basis=r.basis,
        recovered_gj=recovered,
        displaces="purchased_heat" if to_heat else p.boiler_fuel,
        avoided_fuel=Figure(t.avoided_fuel, unit, heat.coverage),
        avoided_t_co2=Figure(t.avoided_co2, "tCO2e", heat.coverage),
        avoided_tce=Figure(t.avoided_tce, "tce", heat.coverage),
        saved_cny=Figure(saved, "CNY", heat.coverage),
        note=note,
        declared=True,
        use=hr.use,
    )
