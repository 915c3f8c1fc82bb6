"""The grid incomer: site load minus PV, seen by an SDM630-like three-phase meter.

What the load is made of (feeders, losses, unmetered loads) is ``distribution``'s business.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from simulators.models.ou import clamp, ou_step

NOMINAL_V = 231.0
PHASE_OFFSET_V = (0.6, -0.4, 0.2)  # a slightly unbalanced transformer
# Voltage at the incomer sags with import and rises with export (transformer impedance).
V_PER_KW = 0.004


@dataclass(slots=True)
class GridState:
    rng: random.Random
    import_kwh: float
    export_kwh: float
    v_noise: list[float]  # per phase, V, mean-reverting
    hz_noise: float
    pf_noise: float
    power_kw: float = 0.0  # signed, + import
    load_kw: float = 0.0
    voltage_v: list[float] = field(default_factory=lambda: [NOMINAL_V] * 3)
    current_a: list[float] = field(default_factory=lambda: [0.0] * 3)
    power_factor: float = 0.95
    frequency_hz: float = 50.0


def step_grid(st: GridState, load_kw: float, pv_kw: float, dt: float) -> None:
    rng = st.rng
    p = load_kw - pv_kw
    vn = st.v_noise
    for i in range(3):
        vn[i] = ou_step(vn[i], 0.0, 0.8, 120.0, dt, rng)
    v = [NOMINAL_V + PHASE_OFFSET_V[i] + vn[i] - V_PER_KW * p for i in range(3)]
    st.hz_noise = clamp(ou_step(st.hz_noise, 0.0, 0.007, 30.0, dt, rng), -0.02, 0.02)
    st.pf_noise = clamp(ou_step(st.pf_noise, 0.0, 0.005, 600.0, dt, rng), -0.02, 0.02)
    pf = 0.95 + st.pf_noise
    phase_w = abs(p) * 1000.0 / 3.0
    st.load_kw = load_kw
    st.power_kw = p
    st.voltage_v = v
    st.current_a = [phase_w / (v[i] * pf) for i in range(3)]
    st.power_factor = pf
    st.frequency_hz = 50.0 + st.hz_noise
    if p >= 0.0:
        st.import_kwh += p * dt / 3600.0
    else:
        st.export_kwh -= p * dt / 3600.0
