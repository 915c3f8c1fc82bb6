"""Heat recovered from compressor-1's oil cooler, metered by a TUF-2000M-style heat meter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.models.ou import clamp, ou_step, relax

# Share of a screw compressor's electrical input recoverable from the oil circuit
# (docs/domain.md default 0.75; manufacturers quote 70–80 %).
RECOVERY_SHARE = 0.75
CP_WATER = 4.186  # kJ/(kg·K), liquid water near 20–40 °C (steam-table value)
DELTA_T_K = 10.0  # the loop's design temperature rise across the oil cooler


@dataclass(slots=True)
class HeatRecoveryState:
    rng: random.Random
    noise: float  # relative, mean-reverting, bounded to ±2 %
    return_c: float
    supply_c: float
    heat_energy_gj: float
    water_volume_m3: float
    heat_kw: float = 0.0
    flow_m3_h: float = 0.0


def step_heat_recovery(st: HeatRecoveryState, compressor_kw: float, dt: float) -> None:
    st.noise = ou_step(st.noise, 0.0, 0.008, 120.0, dt, st.rng)
    heat = RECOVERY_SHARE * compressor_kw * (1.0 + clamp(st.noise, -0.02, 0.02))
    st.return_c = clamp(ou_step(st.return_c, 38.0, 0.6, 1800.0, dt, st.rng), 34.0, 42.0)
    # kW / (kJ/(kg·K) · K) = kg/s; water at ~1000 kg/m³, so ×3.6 gives m³/h.
    flow = heat / (CP_WATER * DELTA_T_K) * 3.6
    if flow > 0.0:
        st.supply_c = st.return_c + DELTA_T_K
    else:
        # No circulation: the supply sensor cools towards the loop temperature.
        st.supply_c = relax(st.supply_c, st.return_c, 600.0, dt)
    st.heat_kw = heat
    st.flow_m3_h = flow
    st.heat_energy_gj += heat * dt / 1e6
    st.water_volume_m3 += flow * dt / 3600.0
