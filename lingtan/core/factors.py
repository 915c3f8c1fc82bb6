"""Emission and standard-coal factors, each with its source (docs/domain.md).

Factors live in versioned sets named after the newest MEE/NBS data year they contain
(``mee-2021``, ``mee-2022``, ``mee-2023``): a set is the library as it stood once that
year's grid factors were published, so ``mee-2023`` holds the 2021, 2022 and 2023 grid
factors and ``mee-2021`` only 2021's. Fuel, heat and GB/T 2589 factors carry no data year
and are the same in every set.

Validity rule (``valid_from``/``valid_to``, inclusive dates):
- a grid factor for data year Y is valid for readings from 1 January Y until the day before
  the next data year *in the same set*; the newest data year of a set stays valid with no end
  (``valid_to`` None), because MEE publishes two or more years late and its guidance is to use
  the newest published factor until a newer one exists;
- nothing is valid before the oldest data year of a set (no back-casting: asking for 2019 is
  an error, not a silent 2021 factor);
- factors without a data year are valid for every period.

Kinds and subjects (``subject`` is a region for grid kinds, a carrier otherwise):
- ``grid``          location-based electricity CO2, kgCO2/kWh; national + seven regional grids
- ``grid_residual`` market-based residual mix (national, excluding market-traded non-fossil)
- ``grid_fossil``   fossil-only generation average (national)
- ``co2``           combustion / purchased-heat CO2 per carrier
- ``tce``           GB/T 2589-2020 standard-coal equivalent per carrier
- ``steam_heat``    heat content of steam, GJ/t, for the enthalpy convention

Lookup order in ``factor``: the optional ``overrides`` mapping (site settings, keyed
``"kind:subject"``) first, then the set. An override is any ``Factor`` and names its own source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

KINDS = ("grid", "grid_residual", "grid_fossil", "co2", "tce", "steam_heat")
REGIONS = ("national", "north_east", "north", "east", "central", "north_west", "south", "south_west")
DEFAULT_SET = "mee-2023"  # docs/architecture.md: a site's default factor_set


@dataclass(frozen=True)
class Factor:
    value: float
    unit: str
    year: int | None
    region: str | None
    source: str
    key: str = ""
    kind: str = ""
    subject: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    label: str = ""  # for people: "North-East China grid", "natural gas"

    def __post_init__(self) -> None:
        if not self.label:
            if self.kind.startswith("grid") and self.region:
                name = "China national" if self.region == "national" else _REGION_NAMES[self.region]
                text = {"grid_residual": f"{name} grid, residual mix (market-based)",
                        "grid_fossil": f"{name} grid, fossil-fired only"}.get(self.kind, f"{name} grid")
            else:
                text = (self.subject or self.kind).replace("_", " ")
            object.__setattr__(self, "label", text)

    def covers(self, year: int) -> bool:
        """True if the factor is valid for readings in ``year`` (any day of it)."""
        after_start = self.valid_from is None or self.valid_from <= date(year, 12, 31)
        before_end = self.valid_to is None or self.valid_to >= date(year, 1, 1)
        return after_start and before_end


class FactorError(LookupError):
    """No such set, kind, subject or no factor valid for the period; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --- electricity -----------------------------------------------------------------------------

_GRID_SOURCE = {
    2021: "MEE/NBS announcement 公告2024年第12号 (2024-04-12), 2021 electricity CO2 emission factors",
    2022: "MEE/NBS announcement of 2022 electricity CO2 emission factors (2024-12-20)",
    2023: "MEE/NBS announcement of 2023 electricity CO2 emission factors (published 2026-01)",
}
_REGION_NAMES = {
    "north": "North China", "north_east": "North-East China", "east": "East China",
    "central": "Central China", "north_west": "North-West China", "south": "South",
    "south_west": "South-West",
}
# (data year) -> (national average, residual mix, fossil-only), tCO2/MWh = kgCO2/kWh (docs/domain.md)
_NATIONAL = {
    2021: (0.5568, 0.5942, 0.8426),
    2022: (0.5366, 0.5856, 0.8325),
    2023: (0.5306, 0.6096, 0.8273),
}
# region -> (2021, 2022, 2023) regional grid averages, kgCO2/kWh (docs/domain.md)
_REGIONAL = {
    "north": (0.7120, 0.6776, 0.6361),
    "north_east": (0.6012, 0.5564, 0.5122),
    "east": (0.5992, 0.5617, 0.5500),
    "central": (0.5354, 0.5395, 0.5271),
    "north_west": (0.5951, 0.5857, 0.5543),
    "south": (0.4326, 0.3869, 0.4042),
    "south_west": (0.2113, 0.2268, 0.2472),
}
_GRID_UNIT = "kgCO2/kWh"


def _grid_rows(year: int) -> list[tuple[str, str, float, str]]:
    """(kind, region, value, source) for one data year."""
    src = _GRID_SOURCE[year]
    avg, residual, fossil = _NATIONAL[year]
    i = year - 2021
    rows = [
        ("grid", "national", avg, f"{src}, national average"),
        ("grid_residual", "national", residual,
         f"{src}, national excluding market-traded non-fossil power (residual mix, market-based)"),
        ("grid_fossil", "national", fossil, f"{src}, fossil-fired generation only"),
    ]
    rows += [("grid", r, v[i], f"{src}, {_REGION_NAMES[r]} regional grid average")
             for r, v in _REGIONAL.items()]
    return rows


# --- fuels, heat, steam (no data year) -------------------------------------------------------

_MEE_GUIDE = "MEE enterprise GHG accounting guideline default (NCV × carbon content × oxidation × 44/12)"
_MEE_HEAT = "MEE industry GHG accounting guidelines default for purchased heat/steam"
# Raw coal is not in the table the other fuels come from; the 24-sector guidelines list it with
# GB/T 2589's raw-coal heating value, so its CO2 and tce factors describe the same coal.
_MEE_24 = ("MEE 24-sector enterprise GHG accounting guidelines default, e.g. 工业其他行业企业温室气体"
           "排放核算方法与报告指南（试行）(NCV × carbon content × oxidation × 44/12)")
_GBT = "GB/T 2589-2020 General principles for calculation of the comprehensive energy consumption"


@dataclass(frozen=True)
class FuelBasis:
    """The guideline inputs behind a fuel CO2 factor, so the factor can be recomputed."""

    ncv: float        # GJ per unit of fuel (unit as in ``ncv_unit``)
    ncv_unit: str
    carbon: float     # tC/GJ
    oxidation: float  # fraction oxidised

    @property
    def co2(self) -> float:
        return self.ncv * self.carbon * self.oxidation * 44 / 12


# MEE enterprise guideline defaults (docs/domain.md "Fuel combustion CO2")
FUEL_BASIS: dict[str, FuelBasis] = {
    "natural_gas": FuelBasis(389.31, "GJ/10^4 Nm3", 0.0153, 0.99),
    "diesel": FuelBasis(43.33, "GJ/t", 0.0202, 0.98),
    "gasoline": FuelBasis(44.80, "GJ/t", 0.0189, 0.98),
    "lpg": FuelBasis(47.31, "GJ/t", 0.0172, 0.99),
    "fuel_oil": FuelBasis(40.19, "GJ/t", 0.0211, 0.98),
    # 20.908 GJ/t = GB/T 2589's raw-coal heating value (5000 kcal/kg), matching 0.7143 kgce/kg.
    "raw_coal": FuelBasis(20.908, "GJ/t", 0.02637, 0.94),
}

# (kind, subject, value, unit, source)
_STATIC: list[tuple[str, str, float, str, str]] = [
    # Published rounded results of the guideline formula (recomputed in tests).
    ("co2", "natural_gas", 21.62, "tCO2/10^4 Nm3", f"{_MEE_GUIDE}: natural gas 21.62 tCO2/10⁴Nm³"),
    ("co2", "diesel", 3.145, "tCO2/t", f"{_MEE_GUIDE}: diesel 3.145 tCO2/t"),
    ("co2", "gasoline", 3.043, "tCO2/t", f"{_MEE_GUIDE}: gasoline 3.043 tCO2/t"),
    ("co2", "lpg", 2.954, "tCO2/t", f"{_MEE_GUIDE}: LPG 2.954 tCO2/t"),
    # The guideline tables give only the inputs for these two: 40.19 × 0.0211 × 0.98 × 44/12 and
    # 20.908 × 0.02637 × 0.94 × 44/12, rounded as the published diesel figure is.
    ("co2", "fuel_oil", 3.047, "tCO2/t",
     f"{_MEE_GUIDE}: fuel oil 40.19 GJ/t × 0.0211 tC/GJ × 98 % × 44/12 = 3.047 tCO2/t"),
    ("co2", "raw_coal", 1.900, "tCO2/t",
     f"{_MEE_24}: raw coal 20.908 GJ/t × 0.02637 tC/GJ × 94 % × 44/12 = 1.900 tCO2/t"),
    ("co2", "heat", 0.11, "tCO2/GJ", f"{_MEE_HEAT}: 0.11 tCO2/GJ"),
    # Electricity equivalent value (当量值) 860 kcal / 7000 kcal. The equal value (等价值) has
    # no national number (it follows last year's plant coal rate), so none ships: a site sets it.
    ("tce", "electricity", 0.1229, "kgce/kWh", f"{_GBT}: electricity, equivalent value (当量值)"),
    ("tce", "heat", 0.03412, "tce/GJ", f"{_GBT}: heat 0.03412 kgce/MJ"),
    ("tce", "diesel", 1.4571, "kgce/kg", f"{_GBT}: diesel"),
    ("tce", "gasoline", 1.4714, "kgce/kg", f"{_GBT}: gasoline"),
    ("tce", "fuel_oil", 1.4286, "kgce/kg", f"{_GBT}: fuel oil"),
    ("tce", "lpg", 1.7143, "kgce/kg", f"{_GBT}: LPG"),
    ("tce", "raw_coal", 0.7143, "kgce/kg", f"{_GBT}: raw coal"),
    ("tce", "coke", 0.9714, "kgce/kg", f"{_GBT}: coke"),
    # Gas-field gas is the default; a site on oil-field gas overrides with the next row's value.
    ("tce", "natural_gas", 1.2143, "kgce/m3", f"{_GBT}: natural gas (gas-field gas, default)"),
    ("tce", "natural_gas_oil_field", 1.3300, "kgce/m3", f"{_GBT}: natural gas (oil-field gas)"),
    # Table value for steam; about 41 % above the enthalpy convention below.
    ("tce", "steam", 0.1286, "kgce/kg", f"{_GBT}: steam (table value)"),
    # 640 kcal/kg × 4.1868 kJ/kcal = 2.6796 GJ/t, then the heat factors apply.
    ("steam_heat", "steam", 2.6796, "GJ/t",
     "Common practice: saturated low-pressure steam at 640 kcal/kg = 2.6796 GJ/t"),
]


def _build() -> dict[str, list[Factor]]:
    sets: dict[str, list[Factor]] = {}
    for newest in _GRID_SOURCE:
        name = f"mee-{newest}"
        years = [y for y in _GRID_SOURCE if y <= newest]
        factors: list[Factor] = []
        for y in years:
            valid_to = None if y == newest else date(y, 12, 31)  # next data year takes over
            for kind, region, value, src in _grid_rows(y):
                factors.append(Factor(
                    value, _GRID_UNIT, y, region, src, key=f"{name}:{kind}:{region}:{y}",
                    kind=kind, subject=region, valid_from=date(y, 1, 1), valid_to=valid_to))
        for kind, subject, value, unit, src in _STATIC:
            factors.append(Factor(value, unit, None, None, src, key=f"{name}:{kind}:{subject}",
                                  kind=kind, subject=subject))
        sets[name] = factors
    return sets


FACTOR_SETS: dict[str, list[Factor]] = _build()


def _set(name: str) -> list[Factor]:
    try:
        return FACTOR_SETS[name]
    except KeyError:
        raise FactorError("factor_set", f"unknown factor set {name!r} (known: {', '.join(FACTOR_SETS)})"
                          ) from None


def factor(set_name: str, kind: str, subject: str, year: int | None = None,
           overrides: Mapping[str, Factor] | None = None) -> Factor:
    """The factor of ``kind`` for ``subject`` valid in ``year`` (None: the newest in the set).

    ``overrides`` (keyed ``"kind:subject"``) win over the set when they cover the year.
    """
    factors = _set(set_name)
    if kind not in KINDS:
        raise FactorError("kind", f"unknown factor kind {kind!r} (known: {', '.join(KINDS)})")
    override = (overrides or {}).get(f"{kind}:{subject}")
    if override is not None and (year is None or override.covers(year)):
        return override if override.key else replace(override, key=f"override:{kind}:{subject}")
    candidates = [f for f in factors if f.kind == kind and f.subject == subject]
    if not candidates:
        field = "region" if kind.startswith("grid") else "carrier"
        known = sorted({f.subject for f in factors if f.kind == kind})
        raise FactorError(field, f"no {kind} factor for {subject!r} in {set_name} "
                                 f"(known: {', '.join(known)})")
    if year is not None:
        candidates = [f for f in candidates if f.covers(year)]
        if not candidates:
            raise FactorError("year", f"no {kind} factor for {subject!r} in {set_name} is valid for {year}")
    return max(candidates, key=lambda f: f.year or 0)


def list_factors(set_name: str | None = None, kind: str | None = None, region: str | None = None,
                 year: int | None = None) -> list[Factor]:
    """Every factor matching the filters; ``year`` keeps those valid for that year."""
    names = [set_name] if set_name is not None else list(FACTOR_SETS)
    out = [f for n in names for f in _set(n)]
    if kind is not None:
        if kind not in KINDS:
            raise FactorError("kind", f"unknown factor kind {kind!r} (known: {', '.join(KINDS)})")
        out = [f for f in out if f.kind == kind]
    if region is not None:
        if region not in REGIONS:
            raise FactorError("region", f"unknown grid region {region!r} (known: {', '.join(REGIONS)})")
        out = [f for f in out if f.region == region]
    if year is not None:
        out = [f for f in out if f.covers(year)]
    return out


def grid_factor(region: str) -> Factor:
    """Location-based grid factor of the default set's newest data year (used by the KPI engine)."""
    try:
        return factor(DEFAULT_SET, "grid", region)
    except FactorError:
        raise ValueError(f"unknown grid region {region!r} (known: {', '.join(REGIONS)})") from None


# --- refrigerants: global warming potentials -------------------------------------------------

# IPCC AR5 (WG I, ch. 8, table 8.A.1), 100-year GWP without climate-carbon feedbacks: the values
# the Paris Agreement transparency framework (decision 18/CMA.1) prescribes for national
# inventories, so a site's Scope 1 adds up with China's own reporting. AR6 values are higher
# (HFC-134a 1530); a site that reports on AR6 gives the value and its source with each entry.
GWP_SOURCE = "IPCC AR5 WG I table 8.A.1, GWP-100 (no climate-carbon feedback)"
GWP_UNIT = "tCO2e/t"
_GWP_AR5: dict[str, float] = {
    "R-23": 12400, "R-32": 677, "R-125": 3170, "R-134a": 1300, "R-143a": 4800, "R-152a": 138,
    "R-227ea": 3350, "R-236fa": 8060, "R-245fa": 858,
}
# Blends by mass fraction of their components (ASHRAE 34 compositions); a blend's GWP is the
# mass-weighted sum of its components' GWPs.
_BLENDS: dict[str, dict[str, float]] = {
    "R-404A": {"R-125": 0.44, "R-143a": 0.52, "R-134a": 0.04},
    "R-407C": {"R-32": 0.23, "R-125": 0.25, "R-134a": 0.52},
    "R-410A": {"R-32": 0.50, "R-125": 0.50},
    "R-507A": {"R-125": 0.50, "R-143a": 0.50},
}
# CFCs and HCFCs are controlled by the Montreal Protocol; GB/T 32150-2015 and the GHG Protocol
# count HFCs, PFCs, SF6 and NF3, so these never enter Scope 1.
MONTREAL_REFRIGERANTS = ("R-11", "R-12", "R-22", "R-123", "R-141b", "R-142b", "R-502")


def _gas_key(name: str) -> str:
    key = name.strip().upper().replace("-", "").replace(" ", "")
    return "R" + key[3:] if key.startswith("HFC") else key


def _gwp_table() -> dict[str, tuple[str, float, str]]:
    """normalised name -> (name as written, GWP, source)."""
    table = {_gas_key(g): (g, v, f"{GWP_SOURCE}: {g}") for g, v in _GWP_AR5.items()}
    for blend, parts in _BLENDS.items():
        value = round(sum(share * _GWP_AR5[g] for g, share in parts.items()), 6)  # no float dust
        recipe = " + ".join(f"{share:.0%} {g}" for g, share in parts.items())
        table[_gas_key(blend)] = (blend, value, f"{GWP_SOURCE}: {blend} = {recipe} by mass")
    return table


REFRIGERANT_GWP: dict[str, tuple[str, float, str]] = _gwp_table()


def refrigerant_name(gas: str) -> str:
    """The library's spelling of a refrigerant (``hfc-134a`` → ``R-134a``); unknown names as given."""
    key = _gas_key(gas)
    known = REFRIGERANT_GWP.get(key)
    if known is not None:
        return known[0]
    montreal = {_gas_key(g): g for g in MONTREAL_REFRIGERANTS}
    return montreal.get(key, gas.strip())


def refrigerant_gwp(gas: str) -> tuple[float, str] | None:
    """(GWP-100, source) of a refrigerant in the library, None if it is not there."""
    known = REFRIGERANT_GWP.get(_gas_key(gas))
    return None if known is None else (known[1], known[2])
