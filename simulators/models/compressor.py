"""Oil-injected screw compressors on one shared receiver: fixed speed with load/unload control,
or variable speed (a drive matching speed to demand), docs/domain.md "Compressed air"."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulators.models.ou import clamp, ou_step

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
class VfdSpec:
    """A variable-speed drive on a screw compressor (docs/domain.md "Compressed air", the VFD model).

    Running, the drive delivers the flow that holds ``setpoint_bar``, between ``min_speed`` and
    full speed, at ``rated_kw × pressure correction × (speed_independent_share + (1 −
    speed_independent_share) × speed) ÷ drive_efficiency``. Below its minimum speed it runs at
    minimum speed up to the machine's ``unload_bar`` and stops, restarting when the pressure
    falls back below the setpoint: it never runs unloaded.
    """

    setpoint_bar: float
    min_speed: float = 0.2  # of full speed
    # Power that does not fall with speed (motor magnetising and drive losses, the cooling fan,
    # leakage past the rotors): what makes specific power rise at low speed.
    speed_independent_share: float = 0.10
    drive_efficiency: float = 0.97  # the inverter's own losses, paid at every speed


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
    vfd: VfdSpec | None = None  # None: fixed speed, load/unload control


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


def vfd_power_kw(spec: CompressorSpec, vfd: VfdSpec, pressure_bar: float, flow_m3min: float) -> float:
    """Electrical power of a variable-speed machine delivering ``flow_m3min`` (speed ∝ flow)."""
    k0 = vfd.speed_independent_share
    speed = flow_m3min / spec.fad_m3min
    return loaded_power_kw(spec, pressure_bar) * (k0 + (1.0 - k0) * speed) / vfd.drive_efficiency


def _vfd_flow(spec: CompressorSpec, vfd: VfdSpec, c: CompressorState, p: float, net_m3min: float,
              h: float) -> float:
    """The flow a variable-speed machine delivers over a substep of ``h`` seconds, m³/min, and its
    state: running (LOADED, at whatever speed) or stopped (OFF). ``net_m3min`` is the demand left
    after the fixed-speed machines' delivery in the same substep."""
    if c.state in (OFF, FAULT) and p >= vfd.setpoint_bar:
        return 0.0  # stopped until the pressure falls below the setpoint
    c.state = LOADED  # a running drive never idles unloaded
    # The speed that brings the receiver back to the setpoint within the substep: the drive's
    # pressure loop is far faster than the receiver, so it holds the setpoint.
    want = net_m3min
    if h > 0.0:
        want += (vfd.setpoint_bar - p) * RECEIVER_M3 / P_ATM_BAR * 60.0 / h
    q_min = vfd.min_speed * spec.fad_m3min
    if want < q_min and p >= spec.unload_bar:
        c.state = OFF
        return 0.0
    return clamp(want, q_min, spec.fad_m3min)


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


TEMPERATURE_TAUS_S = (90.0, 180.0, 1200.0)


def _temperature_target(state: int, p: float) -> tuple[float, float]:
    """(target °C, time constant s, one of TEMPERATURE_TAUS_S) of the discharge temperature."""
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
    if len(specs) != len(comps):
        raise ValueError(f"{len(specs)} compressor specs for {len(comps)} compressor states")
    fixed = [(i, spec, comps[i]) for i, spec in enumerate(specs) if spec.vfd is None]
    vfds = [(i, spec, spec.vfd, comps[i]) for i, spec in enumerate(specs) if spec.vfd is not None]
    # relax()'s factor for each time constant, once per call rather than per machine and substep
    decay = {tau: math.exp(-h / tau) for tau in TEMPERATURE_TAUS_S}
    for _ in range(n):
        supply = 0.0
        for i, spec, c in fixed:
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
            c.temperature_c = target + (c.temperature_c - target) * decay[tau]
            if dt == 0.0:
                c.power_kw, c.air_flow_m3min = kw, flow
        # Variable-speed machines trim what the fixed-speed ones leave, seeing their delivery.
        for i, spec, vfd, c in vfds:
            flow = _vfd_flow(spec, vfd, c, p, demand - supply, h)
            if c.state == LOADED:
                kw = vfd_power_kw(spec, vfd, p, flow)
                c.loaded_h += h_hours
                c.running_h += h_hours
            else:
                kw = 0.0
            c.unloaded_s = 0.0
            c.energy_kwh += kw * h_hours
            energy[i] += kw * h
            delivered[i] += flow * h
            supply += flow
            target, tau = _temperature_target(c.state, p)
            c.temperature_c = target + (c.temperature_c - target) * decay[tau]
            if dt == 0.0:
                c.power_kw, c.air_flow_m3min = kw, flow
        # Free air (at atmospheric pressure) in minus out, spread over the receiver volume.
        p = clamp(p + (supply - demand) * h / 60.0 * P_ATM_BAR / RECEIVER_M3, 0.0, 10.0)
    air.pressure_bar = p
    if dt > 0.0:
        for i, c in enumerate(comps):
            c.power_kw = energy[i] / dt
            c.air_flow_m3min = delivered[i] / dt
