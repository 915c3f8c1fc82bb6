"""The plant's electrical distribution: feeders, sub-feeders and loads, each behind its own meter.

Every circuit's power is a fixed linear combination of a few *drivers* the other models already
produce each step (a line's running power, the compressors, the boiler's firing, shift and office
hours, daylight), so its energy is the same combination of the drivers' time integrals. Stepping
therefore costs one integral per driver whatever the number of meters, and a meter's counter is
worked out only when it is read; the counters still add up exactly what the meters report.

A feeder draws what its metered circuits draw, plus its cable losses (a fixed share of that, their
I²R at typical load) and small loads no meter sees (control cabinets, sockets, lighting of the
switch room). The incomer draws what the main feeders draw, plus the main cables' I²R (growing with
the square of the load) and the gatehouse and the outdoor lighting: so every parent counts a
little more than its children, a few per cent, as on a real site.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from operator import mul

from simulators.models.calendar import SUNDAY
from simulators.models.ou import clamp, ou_step

DRIVERS = (
    "one",  # constant loads, kW
    "line_1", "line_2", "line_3",  # each line's power above its idle power, kW
    "compressor_1", "compressor_2",  # kW
    "air",  # compressed air delivered, m³/min
    "firing",  # boiler firing fraction, 0–1
    "shift_a", "shift_b",  # 1 on workshop A's (08–24) and B's (08–16) shifts, Monday to Saturday
    "office",  # office hours, 0–1 with ramps, weekdays, with building noise
    "cooling",  # office hours × the cooling season, 0–1
    "meals",  # 1 while the canteen cooks
    "dark",  # 1 while the outdoor lighting's photocell sees under DARK_WM2
)
_INDEX = {name: j for j, name in enumerate(DRIVERS)}
DARK_WM2 = 20.0
SHIFT_START_S = 8 * 3600.0
SHIFT_A_END_S = 86400.0
SHIFT_B_END_S = 16 * 3600.0
# Main cables between the incomer and the main feeders' meters, as one equivalent resistance:
# I²R = K × P², 2.8 % at 700 kW, under 1 % below 250 kW.
MAIN_LOSS_PER_KW = 4.0e-5
# Loads on the incomer's busbar that no meter sees: the gatehouse, and outdoor lighting at night.
SITE_UNMETERED: dict[str, float] = {"one": 0.8, "dark": 3.0}


@dataclass(frozen=True, slots=True)
class Circuit:
    meter: str
    name: str
    load: dict[str, float]  # a leaf's whole load, a feeder's unmetered loads: driver → kW per unit
    children: tuple[str, ...] = ()
    loss_share: float = 0.0  # the feeder's cable losses, share of what its children draw
    # How the demo's gateway reads the meter: "modbus" or "mqtt"; None: the equipment's own device.
    transport: str | None = "mqtt"


def _leaf(meter: str, name: str, transport: str | None = "mqtt", **load: float) -> Circuit:
    return Circuit(meter, name, load, transport=transport)


def _feeder(meter: str, name: str, children: tuple[str, ...], loss_share: float, transport: str = "mqtt",
            **load: float) -> Circuit:
    return Circuit(meter, name, load, children, loss_share, transport)


CIRCUITS: tuple[Circuit, ...] = (
    # Workshop A, assembly: line 1 (final assembly, the plant's production counter) and line 2
    # (sub-assembly feeding it). Line 1's stations add up to the power its PLC reports.
    _leaf("l1-machining", "Line 1 machining cells", one=6.0, line_1=0.50),
    _leaf("l1-assembly", "Line 1 assembly stations", one=4.0, line_1=0.22),
    _leaf("l1-conveyor", "Line 1 conveyors", one=3.0, line_1=0.10),
    _leaf("l1-test", "Line 1 end-of-line test", one=2.0, line_1=0.18),
    _feeder("l1-main", "Line 1 feeder", ("l1-machining", "l1-assembly", "l1-conveyor", "l1-test"), 0.008,
            one=0.3),  # control cabinet: PLC, HMI, safety relays
    _leaf("l2-machining", "Line 2 machining", one=4.0, line_2=0.62),
    _leaf("l2-assembly", "Line 2 sub-assembly", one=2.0, line_2=0.38),
    _feeder("l2-main", "Line 2 feeder", ("l2-machining", "l2-assembly"), 0.008, one=0.15),
    _leaf("wsa-hvac", "Workshop A ventilation", one=3.0, shift_a=15.0),
    _leaf("wsa-lighting", "Workshop A lighting", one=1.5, shift_a=10.0),
    _leaf("wsa-crane", "Workshop A overhead crane", one=0.5, line_1=0.03, line_2=0.05),
    # The quality lab hangs on workshop A's board but belongs to the offices (a virtual meter
    # takes it off workshop A in the site's structure).
    _leaf("qc-lab", "Quality lab", one=2.0, office=8.0),
    _feeder("wsa-main", "Workshop A main feeder",
            ("l1-main", "l2-main", "wsa-hvac", "wsa-lighting", "wsa-crane", "qc-lab"), 0.012, "modbus",
            one=0.4, shift_a=1.5),  # sockets, hand tools, forklift chargers
    # Workshop B, stamping and painting, one shift.
    _leaf("l3-press-1", "Line 3 servo press 1", one=5.0, line_3=0.45),
    _leaf("l3-press-2", "Line 3 servo press 2", one=4.0, line_3=0.35),
    _leaf("l3-welding", "Line 3 welding robots", one=3.0, line_3=0.20),
    _feeder("l3-main", "Line 3 feeder", ("l3-press-1", "l3-press-2", "l3-welding"), 0.008, one=0.25),
    _leaf("paint-pretreat", "Paint shop pretreatment pumps", one=2.0, shift_b=12.0),
    _leaf("paint-booth", "Paint shop spray booth fans", one=1.0, shift_b=22.0),
    _leaf("paint-oven", "Paint shop curing oven", one=3.0, shift_b=30.0, line_3=0.12),
    _feeder("paint-main", "Paint shop feeder", ("paint-pretreat", "paint-booth", "paint-oven"), 0.008,
            one=0.15),
    _leaf("wsb-ventilation", "Workshop B ventilation", one=2.0, shift_a=3.0, shift_b=12.0),
    _leaf("wsb-lighting", "Workshop B lighting", one=1.0, shift_a=2.0, shift_b=8.0),
    _feeder("wsb-main", "Workshop B main feeder",
            ("l3-main", "paint-main", "wsb-ventilation", "wsb-lighting"), 0.012, "modbus",
            one=0.3, shift_b=0.8),
    # Compressed-air station: the two compressors and their auxiliaries.
    _leaf("compressor-1", "Screw compressor 1", None, compressor_1=1.0),
    _leaf("compressor-2", "Screw compressor 2", None, compressor_2=1.0),
    _leaf("air-dryer", "Refrigerated air dryer", "modbus", one=0.8, air=0.18),
    _leaf("air-cooling", "Air station ventilation fans", "modbus", one=0.8, compressor_1=0.03,
          compressor_2=0.03),
    _feeder("air-main", "Compressed-air station feeder",
            ("compressor-1", "compressor-2", "air-dryer", "air-cooling"), 0.006, "modbus", one=0.3),
    # Boiler house: what the boiler needs besides gas.
    _leaf("boiler-fan", "Boiler combustion-air fan", "modbus", one=1.0, firing=11.0),
    _leaf("boiler-feedpump", "Boiler feedwater pumps", "modbus", one=4.0, firing=1.0),
    _leaf("water-treatment", "Water treatment", "modbus", one=3.0),
    _feeder("boiler-main", "Boiler house feeder", ("boiler-fan", "boiler-feedpump", "water-treatment"), 0.006,
            "modbus", one=0.25),
    # Office building.
    _leaf("office-lighting", "Office lighting", one=1.0, office=9.0),
    _leaf("office-hvac", "Office air conditioning", one=2.0, office=6.0, cooling=25.0),
    _leaf("office-it", "Server room", one=4.5),
    _leaf("canteen", "Canteen kitchen", one=1.5, office=2.0, meals=18.0),
    _feeder("office-main", "Office building feeder",
            ("office-lighting", "office-hvac", "office-it", "canteen"), 0.01, "modbus", one=0.2),
)
MAIN_FEEDERS = ("wsa-main", "wsb-main", "air-main", "boiler-main", "office-main")
BY_METER: dict[str, Circuit] = {c.meter: c for c in CIRCUITS}
# The sub-meters this model reports (the compressors report through their own model).
SUBMETERS: tuple[str, ...] = tuple(c.meter for c in CIRCUITS if c.transport is not None)

Row = tuple[tuple[int, float], ...]  # (driver index, kW per unit), the non-zero terms


def _dense(terms: dict[str, float]) -> list[float]:
    row = [0.0] * len(DRIVERS)
    for name, coef in terms.items():
        row[_INDEX[name]] += coef
    return row


@cache
def _full(meter: str) -> tuple[float, ...]:
    """A circuit's power per unit of each driver: its own load, plus its children's and their
    cable losses."""
    c = BY_METER[meter]
    row = _dense(c.load)
    for child in c.children:
        for j, coef in enumerate(_full(child)):
            row[j] += (1.0 + c.loss_share) * coef
    return tuple(row)


def _sparse(row: tuple[float, ...] | list[float]) -> Row:
    return tuple((j, coef) for j, coef in enumerate(row) if coef != 0.0)


ROWS: dict[str, Row] = {m: _sparse(_full(m)) for m in BY_METER}
# Dense, for the one product taken every step.
FEEDERS_ROW: tuple[float, ...] = tuple(sum(_full(m)[j] for m in MAIN_FEEDERS) for j in range(len(DRIVERS)))
UNMETERED_ROW: tuple[float, ...] = tuple(_dense(SITE_UNMETERED))


@dataclass(slots=True)
class DistributionState:
    rng: random.Random
    noise: float  # relative, mean-reverting: people and weather in the office building
    start_kwh: list[float]  # each of SUBMETERS' counter when the integrals were zero
    integrals: list[float]  # ∫ driver dt since then, per DRIVERS, in driver units × h
    drivers: list[float] = field(default_factory=lambda: [0.0] * len(DRIVERS))  # over the last step
    feeders_kw: float = 0.0  # Σ main feeders
    losses_kw: float = 0.0  # main cables
    unmetered_kw: float = 0.0  # gatehouse and outdoor lighting


def new_distribution_state(rng: random.Random, init: random.Random) -> DistributionState:
    return DistributionState(rng=rng, noise=0.0,
                             start_kwh=[round(init.uniform(2.0e4, 4.0e5), 2) for _ in SUBMETERS],
                             integrals=[0.0] * len(DRIVERS))


def office_hours(weekday: int, second_of_day: float) -> float:
    """Offices are busy 07:00–19:00 on weekdays, with half-hour ramps."""
    if weekday >= 5:
        return 0.0
    h = second_of_day / 3600.0
    return clamp(h - 6.5, 0.0, 1.0) * clamp(19.5 - h, 0.0, 1.0)


def canteen_cooking(weekday: int, second_of_day: float) -> bool:
    """Lunch for the first shift and the offices, dinner for the second, Monday to Saturday."""
    h = second_of_day / 3600.0
    return weekday != SUNDAY and (10.5 <= h < 12.5 or 16.5 <= h < 18.5)


@lru_cache(maxsize=8)
def cooling_season(utc_day: int) -> float:
    """0 (no air conditioning) … 1 (late July): Shenyang's summers, not its winters, which the
    district heating covers."""
    n = date.fromordinal(date(1970, 1, 1).toordinal() + utc_day).timetuple().tm_yday
    return max(0.0, math.cos(2.0 * math.pi * (n - 205) / 365.0) - 0.3) / 0.7


def step_distribution(
    st: DistributionState,
    *,
    epoch_s: float,
    weekday: int,
    second_of_day: float,
    lines_above_idle_kw: tuple[float, float, float],
    compressors_kw: tuple[float, float],
    air_m3min: float,
    firing: float,
    irradiance_wm2: float,
    dt: float,
) -> None:
    st.noise = ou_step(st.noise, 0.0, 0.05, 900.0, dt, st.rng)
    office = office_hours(weekday, second_of_day) * (1.0 + clamp(st.noise, -0.15, 0.15))
    working = weekday != SUNDAY and second_of_day >= SHIFT_START_S
    d = [
        1.0,
        *lines_above_idle_kw,
        *compressors_kw,
        air_m3min,
        firing,
        1.0 if working and second_of_day < SHIFT_A_END_S else 0.0,
        1.0 if working and second_of_day < SHIFT_B_END_S else 0.0,
        office,
        office * cooling_season(int(epoch_s // 86400.0)),
        1.0 if canteen_cooking(weekday, second_of_day) else 0.0,
        1.0 if irradiance_wm2 < DARK_WM2 else 0.0,
    ]
    h = dt / 3600.0
    st.integrals = [a + x * h for a, x in zip(st.integrals, d)]  # noqa: B905 (hot loop; equal lengths)
    st.drivers = d
    feeders = sum(map(mul, FEEDERS_ROW, d))
    st.feeders_kw = feeders
    st.losses_kw = MAIN_LOSS_PER_KW * feeders * feeders
    st.unmetered_kw = sum(map(mul, UNMETERED_ROW, d))


def load_kw(st: DistributionState) -> float:
    """What the incomer supplies: the main feeders, the main cables' losses, the unmetered loads."""
    return st.feeders_kw + st.losses_kw + st.unmetered_kw


def power_kw(st: DistributionState, meter: str) -> float:
    """A circuit's mean power over the last step."""
    d = st.drivers
    return sum(coef * d[j] for j, coef in ROWS[meter])


def energies_kwh(st: DistributionState) -> list[float]:
    """Each of SUBMETERS' import counter."""
    acc = st.integrals
    return [start + sum(coef * acc[j] for j, coef in ROWS[m])
            for start, m in zip(st.start_kwh, SUBMETERS, strict=True)]
