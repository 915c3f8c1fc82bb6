"""Production lines on shifts (line 1 on two), with occasional unplanned stoppages."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulators.models.calendar import SUNDAY
from simulators.models.ou import clamp, ou_step

SHIFT_START_S = 8 * 3600.0  # shifts 08:00–16:00 and 16:00–24:00 local
NOMINAL_RATE_PER_MIN = 40.0
RUNNING_KW = 150.0
IDLE_KW = 15.0
MEAN_TIME_BETWEEN_STOPS_S = 4 * 3600.0


@dataclass(frozen=True, slots=True)
class LineSpec:
    idle_kw: float = IDLE_KW
    running_kw: float = RUNNING_KW  # at the nominal rate
    shift_end_s: float = 86400.0  # local; shifts start at 08:00
    mean_time_between_stops_s: float = MEAN_TIME_BETWEEN_STOPS_S


LINE_1 = LineSpec()


@dataclass(slots=True)
class LineState:
    rng: random.Random
    count: float  # cumulative, fractional part carried between steps
    rate_noise: float  # relative, mean-reverting
    stop_left_s: float  # remaining unplanned stoppage
    running: bool = False
    rate_per_min: float = 0.0
    power_kw: float = 0.0


def scheduled(weekday: int, second_of_day: float, shift_end_s: float = 86400.0) -> bool:
    return weekday != SUNDAY and SHIFT_START_S <= second_of_day < shift_end_s


def step_line(st: LineState, weekday: int, second_of_day: float, dt: float, spec: LineSpec = LINE_1) -> None:
    rng = st.rng
    st.rate_noise = ou_step(st.rate_noise, 0.0, 0.05, 120.0, dt, rng)
    # Both draws happen every step so the random stream does not depend on the schedule.
    u_stop, u_len = rng.random(), rng.random()
    on_shift = scheduled(weekday, second_of_day, spec.shift_end_s)
    if st.stop_left_s > 0.0:
        st.stop_left_s -= dt
    elif on_shift and u_stop < 1.0 - math.exp(-dt / spec.mean_time_between_stops_s):
        st.stop_left_s = 180.0 + 540.0 * u_len
    running = on_shift and st.stop_left_s <= 0.0
    if running:
        rate = NOMINAL_RATE_PER_MIN * (1.0 + clamp(st.rate_noise, -0.15, 0.15))
        power = spec.idle_kw + (spec.running_kw - spec.idle_kw) * rate / NOMINAL_RATE_PER_MIN
    else:
        rate = 0.0
        power = spec.idle_kw
    st.running = running
    st.rate_per_min = rate
    st.power_kw = power
    st.count += rate * dt / 60.0
