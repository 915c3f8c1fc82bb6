"""Gas-fired saturated-steam boiler whose feedwater is preheated by recovered heat."""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.models.ou import clamp, ou_step, relax

# Saturated steam at 0.7 MPa abs and water at 20 °C, kJ/kg (IAPWS-IF97 steam tables,
# as quoted in docs/domain.md: 2763 and 84).
H_STEAM_KJ_KG = 2763.0
H_FEEDWATER_KJ_KG = 84.0
# Natural gas net calorific value 389.31 GJ/10⁴Nm³ = 38 931 kJ/m³: MEE enterprise GHG
# accounting guideline default (docs/domain.md, fuel combustion table).
NCV_GAS_KJ_M3 = 38931.0
EFFICIENCY = 0.92
MAX_STEAM_T_H = 4.0  # nameplate, used to scale the combustion-air fan


@dataclass(slots=True)
class BoilerState:
    rng: random.Random
    steam_smooth_t_h: float  # demand after the process's thermal inertia
    steam_noise: float  # relative, mean-reverting
    gas_volume_m3: float
    steam_mass_t: float
    steam_flow_t_h: float = 0.0
    gas_flow_m3_h: float = 0.0


def steam_demand_target(line_running: bool) -> float:
    """t/h: process heating while the line runs, tracing and hot water otherwise."""
    return 2.0 if line_running else 0.6


def gas_flow_m3_h(steam_t_h: float, recovered_kw: float) -> float:
    """Gas needed for the steam, minus what the preheated feedwater already carries."""
    duty_kj_h = steam_t_h * 1000.0 * (H_STEAM_KJ_KG - H_FEEDWATER_KJ_KG) - recovered_kw * 3600.0
    return max(0.0, duty_kj_h / (EFFICIENCY * NCV_GAS_KJ_M3))


def firing_fraction(st: BoilerState) -> float:
    return st.gas_flow_m3_h / gas_flow_m3_h(MAX_STEAM_T_H, 0.0)


def step_boiler(st: BoilerState, line_running: bool, recovered_kw: float, dt: float) -> None:
    st.steam_smooth_t_h = relax(st.steam_smooth_t_h, steam_demand_target(line_running), 1200.0, dt)
    st.steam_noise = ou_step(st.steam_noise, 0.0, 0.03, 300.0, dt, st.rng)
    steam = st.steam_smooth_t_h * (1.0 + clamp(st.steam_noise, -0.1, 0.1))
    gas = gas_flow_m3_h(steam, recovered_kw)
    st.steam_flow_t_h = steam
    st.gas_flow_m3_h = gas
    st.steam_mass_t += steam * dt / 3600.0
    st.gas_volume_m3 += gas * dt / 3600.0
