"""Emission factors used by the KPI engine, each with its source.

Grid factors are location-based Scope 2 factors in kgCO2/kWh (= tCO2/MWh).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Factor:
    value: float
    unit: str
    year: int
    region: str
    source: str


_MEE_2023 = (
    "MEE/NBS announcement of 2023 electricity CO2 emission factors (published 2026-01), "
    "regional grid average"
)

GRID_FACTORS: dict[str, Factor] = {
    "north_east": Factor(0.5122, "kgCO2/kWh", 2023, "North-East China grid", _MEE_2023),
    "north": Factor(0.6361, "kgCO2/kWh", 2023, "North China grid", _MEE_2023),
    "east": Factor(0.5500, "kgCO2/kWh", 2023, "East China grid", _MEE_2023),
    "central": Factor(0.5271, "kgCO2/kWh", 2023, "Central China grid", _MEE_2023),
    "north_west": Factor(0.5543, "kgCO2/kWh", 2023, "North-West China grid", _MEE_2023),
    "south": Factor(0.4042, "kgCO2/kWh", 2023, "South China grid", _MEE_2023),
    "south_west": Factor(0.2472, "kgCO2/kWh", 2023, "South-West China grid", _MEE_2023),
    "national": Factor(
        0.5306, "kgCO2/kWh", 2023, "China national average",
        "MEE/NBS announcement of 2023 electricity CO2 emission factors, national average",
    ),
}


def grid_factor(region: str) -> Factor:
    try:
        return GRID_FACTORS[region]
    except KeyError:
        raise ValueError(f"unknown grid region {region!r} (known: {', '.join(GRID_FACTORS)})") from None
