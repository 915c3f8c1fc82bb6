"""Rooftop PV plant: clear-sky irradiance from the sun's position, times passing clouds."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from simulators.models.ou import clamp, ou_step

# SunSpec inverter operating states (model 103 St).
ST_OFF = 1
ST_SLEEPING = 2
ST_MPPT = 4


@dataclass(frozen=True, slots=True)
class PvSpec:
    latitude_deg: float
    longitude_deg: float
    kwp: float = 400.0
    inverter_kw: float = 360.0
    derate: float = 0.85  # soiling, module temperature, wiring and inverter losses
    dc_to_ac: float = 0.97  # inverter efficiency, only used to report DC power
    # Inverters need a little DC power before they leave sleep mode.
    wake_kw: float = 0.5


@dataclass(slots=True)
class PvState:
    rng: random.Random
    cloud_cover: float  # 0 clear … 1 overcast, changes over minutes
    cloud_mean: float  # the weather, drifts over hours
    dip_left_s: float  # remaining duration of a passing cumulus shadow
    dip_depth: float
    energy_wh: float  # lifetime AC energy counter
    irradiance_wm2: float = 0.0
    power_kw: float = 0.0
    dc_power_kw: float = 0.0
    status: int = ST_SLEEPING


def new_pv_state(rng: random.Random, energy_wh: float) -> PvState:
    mean = rng.uniform(0.1, 0.5)
    return PvState(rng=rng, cloud_cover=mean, cloud_mean=mean, dip_left_s=0.0, dip_depth=0.0,
                   energy_wh=energy_wh)


@lru_cache(maxsize=8)
def _day_terms(utc_day: int, latitude_deg: float) -> tuple[float, float, float]:
    """(sin φ·sin δ, cos φ·cos δ, equation of time in hours) for one UTC day."""
    n = date.fromordinal(date(1970, 1, 1).toordinal() + utc_day).timetuple().tm_yday
    g = 2.0 * math.pi * (n - 1) / 365.0
    # Declination and equation of time: Spencer (1971), "Fourier series representation
    # of the position of the sun", Search 2(5).
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g)
            - 0.006758 * math.cos(2 * g) + 0.000907 * math.sin(2 * g)
            - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    eot_min = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                        - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    phi = math.radians(latitude_deg)
    return math.sin(phi) * math.sin(decl), math.cos(phi) * math.cos(decl), eot_min / 60.0


def clear_sky_ghi(spec: PvSpec, epoch_s: float) -> float:
    """Clear-sky global horizontal irradiance, W/m²."""
    utc_day, sec = divmod(epoch_s, 86400.0)
    ss, cc, eot_h = _day_terms(int(utc_day), spec.latitude_deg)
    solar_h = sec / 3600.0 + spec.longitude_deg / 15.0 + eot_h
    cos_z = ss + cc * math.cos(math.radians(15.0 * (solar_h - 12.0)))
    if cos_z <= 0.0:
        return 0.0
    # Haurwitz (1945) clear-sky model, as compared in Reno, Hansen & Stein (2012),
    # "Global horizontal irradiance clear sky models", Sandia SAND2012-2389.
    return 1098.0 * cos_z * math.exp(-0.057 / cos_z)


def step_pv(spec: PvSpec, st: PvState, epoch_s: float, dt: float) -> None:
    rng = st.rng
    st.cloud_mean = clamp(ou_step(st.cloud_mean, 0.35, 0.2, 4 * 3600.0, dt, rng), 0.0, 0.95)
    st.cloud_cover = clamp(ou_step(st.cloud_cover, st.cloud_mean, 0.12, 600.0, dt, rng), 0.0, 1.0)
    # Passing cumulus: a Poisson process, one shadow every ~15 min on average.
    if st.dip_left_s > 0.0:
        st.dip_left_s -= dt
    elif rng.random() < 1.0 - math.exp(-dt / 900.0):
        st.dip_left_s = rng.uniform(30.0, 240.0)
        st.dip_depth = rng.uniform(0.3, 0.8)
    # Clear-sky index from cloud cover: Kasten & Czeplak (1980), Solar Energy 24(2).
    k = 1.0 - 0.75 * st.cloud_cover ** 3.4
    if st.dip_left_s > 0.0:
        k *= 1.0 - st.dip_depth
    ghi = clear_sky_ghi(spec, epoch_s) * k
    ac = min(spec.kwp * ghi / 1000.0 * spec.derate, spec.inverter_kw)
    if ac < spec.wake_kw:
        ac = 0.0
    st.irradiance_wm2 = ghi
    st.power_kw = ac
    st.dc_power_kw = ac / spec.dc_to_ac
    st.status = ST_MPPT if ac > 0.0 else ST_SLEEPING
    st.energy_wh += ac * dt / 3.6
