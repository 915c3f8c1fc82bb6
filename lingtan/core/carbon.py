"""Carrier amount → tCO2e and tce, with every factor used and its source (docs/domain.md).

Amounts are first converted (pint) to the carrier's canonical unit; each factor's unit is
then one of a small fixed set, with its scale to tonnes written out in ``_PER_CANONICAL``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pint

from lingtan.core.factors import DEFAULT_SET, REGIONS, Factor, FactorError, factor
from lingtan.kernel.quantities import quantity

Carrier = Literal["electricity", "natural_gas", "diesel", "gasoline", "lpg", "heat", "steam",
                  "raw_coal", "coke", "fuel_oil"]
Basis = Literal["location", "market"]
SteamConvention = Literal["enthalpy", "table"]

# Canonical unit per carrier: what the meters store (docs/architecture.md canonical quantities), or
# the unit the fuel factors are quoted per.
CANONICAL: dict[str, str] = {
    "electricity": "kWh", "heat": "GJ", "steam": "t", "natural_gas": "m3",
    "diesel": "t", "gasoline": "t", "lpg": "t", "fuel_oil": "t", "raw_coal": "t", "coke": "t",
}

# factor unit -> multiplier so that result (t, or GJ for steam) = canonical amount × value × multiplier
_PER_CANONICAL: dict[str, float] = {
    "kgCO2/kWh": 1e-3,      # kg per kWh → t per kWh
    "tCO2/10^4 Nm3": 1e-4,  # per 10 000 m³
    "tCO2/t": 1.0,
    "tCO2/GJ": 1.0,
    "kgce/kWh": 1e-3,
    "kgce/m3": 1e-3,
    "kgce/kg": 1.0,         # kg per kg = t per t
    "tce/GJ": 1.0,
    "GJ/t": 1.0,           # steam heat content: gives GJ, not tonnes
}


class ConversionError(ValueError):
    """An input that cannot be converted; ``field`` names it for the 422 answer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Amount:
    value: float
    unit: str


@dataclass
class Conversion:
    carrier: str
    amount: float
    unit: str
    amount_canonical: Amount
    tco2e: float | None
    tce: float | None
    factors: list[Factor] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _canonical(carrier: str, amount: float, unit: str) -> float:
    target = CANONICAL[carrier]
    if unit == target:
        # Already canonical: pint would multiply by exactly 1, at a tenth of a millisecond a call
        # (the KPI figures and a series' unit rates convert in canonical units).
        return float(amount)
    try:
        return float(quantity(amount, unit).to(target).magnitude)
    except pint.DimensionalityError:
        raise ConversionError("unit", f"unit {unit!r} does not fit carrier {carrier!r} "
                                      f"(expects something convertible to {target})") from None
    except (pint.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError, AttributeError):
        raise ConversionError("unit", f"unknown unit {unit!r}") from None


def _apply(amount: float, f: Factor) -> float:
    return amount * f.value * _PER_CANONICAL[f.unit]


def convert(carrier: str, amount: float, unit: str, factor_set: str | None = None,
            region: str | None = None, year: int | None = None, basis: Basis = "location",
            steam_convention: SteamConvention = "enthalpy",
            overrides: Mapping[str, Factor] | None = None) -> Conversion:
    if carrier not in CANONICAL:
        raise ConversionError("carrier", f"unknown carrier {carrier!r} (known: {', '.join(CANONICAL)})")
    if amount < 0:
        raise ConversionError("amount", "amount must be ≥ 0")
    if region is not None and region not in REGIONS:
        raise ConversionError("region", f"unknown grid region {region!r} (known: {', '.join(REGIONS)})")
    set_name = factor_set or DEFAULT_SET
    value = _canonical(carrier, amount, unit)
    notes: list[str] = []
    used: list[Factor] = []

    def get(kind: str, subject: str) -> Factor:
        f = factor(set_name, kind, subject, year, overrides)
        used.append(f)
        return f

    try:
        co2, tce = _carrier(carrier, value, region, basis, steam_convention, get, notes)
    except FactorError as exc:
        raise ConversionError(exc.field, str(exc)) from None
    if carrier != "electricity" and (region is not None or basis != "location"):
        notes.append("region and basis apply to electricity only; ignored")
    if carrier == "natural_gas":
        notes.append("volume taken as standard cubic metres (Nm³), as the factors are quoted")
    return Conversion(carrier, amount, unit, Amount(value, CANONICAL[carrier]), co2, tce, used, notes)


def _carrier(carrier: str, value: float, region: str | None, basis: str, steam_convention: str,
             get: Callable[[str, str], Factor], notes: list[str]) -> tuple[float | None, float | None]:
    if carrier == "electricity":
        if basis == "market":
            # The residual mix is published for the national grid only.
            if region not in (None, "national"):
                notes.append(f"market-based uses the national residual mix; region {region!r} ignored")
            co2 = _apply(value, get("grid_residual", "national"))
        else:
            if region is None:
                notes.append("no region given: national average grid factor used")
            co2 = _apply(value, get("grid", region or "national"))
        notes.append("tce by equivalent value (当量值); the equal value (等价值) has no national "
                     "figure and is set per site")
        return co2, _apply(value, get("tce", "electricity"))
    if carrier == "heat":
        return _apply(value, get("co2", "heat")), _apply(value, get("tce", "heat"))
    if carrier == "steam":
        gj = _apply(value, get("steam_heat", "steam"))  # t × GJ/t
        # CO2 always goes through the heat content: the 0.11 factor is per GJ.
        co2 = _apply(gj, get("co2", "heat"))
        if steam_convention == "table":
            notes.append("steam: CO2 via 2.6796 GJ/t × 0.11 tCO2/GJ; tce by GB/T 2589 table value")
            return co2, _apply(value, get("tce", "steam"))
        notes.append(f"steam: enthalpy convention, {gj:g} GJ then heat factors")
        return co2, _apply(gj, get("tce", "heat"))
    if carrier == "coke":
        # No MEE combustion default in the library for coke yet: tce only.
        notes.append(f"no CO2 factor for {carrier} in the library; tco2e is null")
        return None, _apply(value, get("tce", carrier))
    return _apply(value, get("co2", carrier)), _apply(value, get("tce", carrier))
