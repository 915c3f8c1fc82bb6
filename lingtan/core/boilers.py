"""Boiler efficiency by the direct method (docs/domain.md): steam × (h_steam − h_feedwater) ÷ (fuel × NCV)."""

from __future__ import annotations

from bisect import bisect_left

STEAM_SOURCE = "saturated steam enthalpy by absolute pressure, IAPWS-IF97 steam tables (docs/domain.md)"
# absolute pressure MPa -> saturated steam enthalpy kJ/kg
SATURATED_STEAM: list[tuple[float, float]] = [(0.5, 2748.0), (0.7, 2763.0), (1.0, 2777.0), (1.3, 2787.0)]
WATER_CP_KJ_KG_K = 4.186  # liquid water; 20 °C → 83.7 kJ/kg (docs/domain.md quotes 84)
GB24500_SOURCE = "GB 24500-2020 energy efficiency grades, gas-fired non-condensing boilers"
GB24500_GAS = (0.96, 0.94, 0.92)  # grades 1, 2, 3


def steam_enthalpy(pressure_mpa_abs: float) -> float | None:
    """Linear interpolation in the table; None outside it (no extrapolation of a steam table)."""
    pressures = [p for p, _ in SATURATED_STEAM]
    if not pressures[0] <= pressure_mpa_abs <= pressures[-1]:
        return None
    i = bisect_left(pressures, pressure_mpa_abs)
    p1, h1 = SATURATED_STEAM[i]
    if p1 == pressure_mpa_abs:
        return h1
    p0, h0 = SATURATED_STEAM[i - 1]
    return h0 + (h1 - h0) * (pressure_mpa_abs - p0) / (p1 - p0)


def water_enthalpy(temperature_c: float) -> float:
    return WATER_CP_KJ_KG_K * temperature_c


def efficiency(steam_t: float, h_steam: float, h_feedwater: float, fuel_gj: float,
               preheat_gj: float = 0.0) -> float | None:
    """Heat into the steam not already brought by preheated feedwater, over the fuel's heat.

    ``preheat_gj``: recovered heat that warmed the feedwater; it is not the burner's work.
    """
    if fuel_gj <= 0:
        return None
    out_gj = steam_t * (h_steam - h_feedwater) / 1000.0 - preheat_gj  # t × kJ/kg = MJ
    return out_gj / fuel_gj


def gb24500_grade(eff: float) -> int | None:
    for i, limit in enumerate(GB24500_GAS, start=1):
        if eff >= limit:
            return i
    return None
