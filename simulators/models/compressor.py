"""Oil-injected screw compressors with load/unload control on one shared receiver."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulators.models.ou import clamp, ou_step, relax

OFF = 0
UNLOADED = 1
LOADED = 2
FAULT = 3

P_ATM_BAR = 1.013
RECEIVER_M3 = 8.0  # receiver plus pipework; sets how fast the pressure band is crossed
# The control band is resolved in substeps no longer than this, so that coarse
# fast-forward steps still cycle the compressors instead of overshooting the band.
MAX_SUBSTEP_S = 10.0


@dataclass(frozen=True, slots=True)
class CompressorSpec:
    device_id: str
    rated_kw: float
    fad_m3min: float  # free air delivery when loaded
    unload_bar: float  # stop delivering at or above this pressure
    load_bar: float  # reload below this pressure
    restart_bar: float  # restart a stopped motor below this pressure
    unloaded_share: float = 0.27  # unloaded power / rated power
    idle_stop_s: float = 600.0  # stop the motor after this long unloaded


@dataclass(slots=True)
class CompressorState:
    state: int
    unloaded_s: float
    temperature_c: float  # discharge temperature
    running_h: float
    loaded_h: float
    energy_kwh: float
    power_kw: float = 0.0  # mean over the last step
    air_flow_m3min: float = 0.0  # mean over the last step


@dataclass(slots=True)
class AirSystemState:
    rng: random.Random
    pressure_bar: float
    demand_noise: float  # relative, mean-reverting
    demand_m3min: float = 0.0


AMBIENT_C = 20.0


def loaded_power_kw(spec: CompressorSpec, pressure_bar: float) -> float:
    # Shaft power of a screw rises roughly 6 %/bar with discharge pressure.
    return spec.rated_kw * (1.0 + 0.06 * (pressure_bar - 7.0))


def _control(spec: CompressorSpec, c: CompressorState, p: float) -> None:
    s = c.state
    if s == LOADED:
        if p >= spec.unload_bar:
            c.state = UNLOADED
            c.unloaded_s = 0.0
    elif s == UNLOADED:
        if p < spec.load_bar:
            c.state = LOADED
        elif c.unloaded_s >= spec.idle_stop_s:
            c.state = OFF
    elif s == OFF and p < spec.restart_bar:
        c.state = LOADED


def _temperature_target(state: int, p: float) -> tuple[float, float]:
    """(target °C, time constant s) of the discharge temperature."""
    if state == LOADED:
        return 84.0 + 2.0 * (p - 7.0), 90.0
    if state == UNLOADED:
        return 72.0, 180.0
    return AMBIENT_C, 1200.0


def air_demand_target(line_running: bool) -> float:
    """Plant air demand, m³/min: tools and actuators on the line, leaks otherwise."""
    return 14.0 if line_running else 2.2


def step_air_system(
    specs: tuple[CompressorSpec, ...],
    comps: tuple[CompressorState, ...],
    air: AirSystemState,
    line_running: bool,
    dt: float,
) -> None:
    air.demand_noise = ou_step(air.demand_noise, 0.0, 0.06, 60.0, dt, air.rng)
    demand = air_demand_target(line_running) * (1.0 + clamp(air.demand_noise, -0.2, 0.2))
    air.demand_m3min = demand
    n = max(1, math.ceil(dt / MAX_SUBSTEP_S))
    h = dt / n
    h_hours = h / 3600.0
    p = air.pressure_bar
    energy = [0.0] * len(comps)
    delivered = [0.0] * len(comps)
    for _ in range(n):
        supply = 0.0
        for i, (spec, c) in enumerate(zip(specs, comps, strict=True)):
            _control(spec, c, p)
            state = c.state
            if state == LOADED:
                kw = loaded_power_kw(spec, p)
                flow = spec.fad_m3min
                c.loaded_h += h_hours
                c.running_h += h_hours
            elif state == UNLOADED:
                kw = spec.rated_kw * spec.unloaded_share
                flow = 0.0
                c.unloaded_s += h
                c.running_h += h_hours
            else:
                kw = 0.0
                flow = 0.0
            c.energy_kwh += kw * h_hours
            energy[i] += kw * h
            delivered[i] += flow * h
            supply += flow
            target, tau = _temperature_target(state, p)
            c.temperature_c = relax(c.temperature_c, target, tau, h)
            if dt == 0.0:
                c.power_kw, c.air_flow_m3min = kw, flow
        # Free air (at atmospheric pressure) in minus out, spread over the receiver volume.
        p = clamp(p + (supply - demand) * h / 60.0 * P_ATM_BAR / RECEIVER_M3, 0.0, 10.0)
    air.pressure_bar = p
    if dt > 0.0:
        for i, c in enumerate(comps):
            c.power_kw = energy[i] / dt
            c.air_flow_m3min = delivered[i] / dt
