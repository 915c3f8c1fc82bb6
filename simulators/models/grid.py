"""The grid incomer: site load minus PV, seen by an SDM630-like three-phase meter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from simulators.models.ou import clamp, ou_step

NOMINAL_V = 231.0
PHASE_OFFSET_V = (0.6, -0.4, 0.2)  # a slightly unbalanced transformer
# Voltage at the incomer sags with import and rises with export (transformer impedance).
V_PER_KW = 0.004
BOILER_HOUSE_BASE_KW = 10.0  # feed pumps, water treatment, controls
BOILER_FAN_KW = 12.0  # combustion-air fan at full firing


@dataclass(slots=True)
class GridState:
    rng: random.Random
    import_kwh: float
    export_kwh: float
    v_noise: list[float]  # per phase, V, mean-reverting
    hz_noise: float
    pf_noise: float
    base_noise: float  # relative
    power_kw: float = 0.0  # signed, + import
    base_kw: float = 0.0
    aux_kw: float = 0.0
    load_kw: float = 0.0
    voltage_v: list[float] = field(default_factory=lambda: [NOMINAL_V] * 3)
    current_a: list[float] = field(default_factory=lambda: [0.0] * 3)
    power_factor: float = 0.95
    frequency_hz: float = 50.0


def base_load_kw(second_of_day: float) -> float:
    """Lighting, HVAC and offices: 35 kW at night, 60 kW from 07:00 to 19:00, with ramps."""
    h = second_of_day / 3600.0
    day = clamp(h - 6.5, 0.0, 1.0) * clamp(19.5 - h, 0.0, 1.0)
    return 35.0 + 25.0 * day


def boiler_house_kw(firing_fraction: float) -> float:
    return BOILER_HOUSE_BASE_KW + BOILER_FAN_KW * firing_fraction


def step_grid(
    st: GridState,
    second_of_day: float,
    equipment_kw: float,
    firing_fraction: float,
    pv_kw: float,
    dt: float,
) -> None:
    rng = st.rng
    st.base_noise = ou_step(st.base_noise, 0.0, 0.03, 900.0, dt, rng)
    base = base_load_kw(second_of_day) * (1.0 + st.base_noise)
    aux = boiler_house_kw(firing_fraction)
    load = equipment_kw + base + aux
    p = load - pv_kw
    vn = st.v_noise
    for i in range(3):
        vn[i] = ou_step(vn[i], 0.0, 0.8, 120.0, dt, rng)
    v = [NOMINAL_V + PHASE_OFFSET_V[i] + vn[i] - V_PER_KW * p for i in range(3)]
    st.hz_noise = clamp(ou_step(st.hz_noise, 0.0, 0.007, 30.0, dt, rng), -0.02, 0.02)
    st.pf_noise = clamp(ou_step(st.pf_noise, 0.0, 0.005, 600.0, dt, rng), -0.02, 0.02)
    pf = 0.95 + st.pf_noise
    phase_w = abs(p) * 1000.0 / 3.0
    st.base_kw = base
    st.aux_kw = aux
    st.load_kw = load
    st.power_kw = p
    st.voltage_v = v
    st.current_a = [phase_w / (v[i] * pf) for i in range(3)]
    st.power_factor = pf
    st.frequency_hz = 50.0 + st.hz_noise
    if p >= 0.0:
        st.import_kwh += p * dt / 3600.0
    else:
        st.export_kwh -= p * dt / 3600.0
