"""Generic gas-boiler image: FC03 holding, float32 ABCD."""

from __future__ import annotations

from simulators.models.boiler import BoilerState
from simulators.registers.encoding import block, f32_abcd

UNIT = 5
TABLE = "holding"
GAS_VOLUME = 0  # m³
GAS_FLOW = 2  # m³/h
STEAM_MASS = 4  # t
STEAM_FLOW = 6  # t/h
SIZE = 8


def image(b: BoilerState) -> dict[str, dict[int, list[int]]]:
    points = {
        GAS_VOLUME: f32_abcd(b.gas_volume_m3),
        GAS_FLOW: f32_abcd(b.gas_flow_m3_h),
        STEAM_MASS: f32_abcd(b.steam_mass_t),
        STEAM_FLOW: f32_abcd(b.steam_flow_t_h),
    }
    return {TABLE: {0: block(points, 0, SIZE)}}
