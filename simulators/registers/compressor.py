"""Generic screw-compressor controller image: FC03 holding, big-endian scaled integers.

Compressor controllers have no standard map; this one is the project's own (docs/domain.md).
"""

from __future__ import annotations

from simulators.models.compressor import CompressorState
from simulators.registers.encoding import block, i16, u16, u32

TABLE = "holding"
PRESSURE = 0  # uint16 ×0.01 bar
STATE = 1  # uint16: 0 off, 1 unloaded, 2 loaded, 3 fault
MOTOR_POWER = 2  # uint16 ×0.1 kW
FREE_AIR_DELIVERY = 3  # uint16 ×0.01 m³/min
RUNNING_HOURS = 4  # uint32 ×0.01 h
LOADED_HOURS = 6  # uint32 ×0.01 h
ENERGY = 8  # uint32 ×0.1 kWh
DISCHARGE_TEMPERATURE = 10  # int16 ×0.1 °C
SIZE = 11


def image(c: CompressorState, pressure_bar: float) -> dict[str, dict[int, list[int]]]:
    points = {
        PRESSURE: u16(pressure_bar, 0.01),
        STATE: u16(c.state),
        MOTOR_POWER: u16(c.power_kw, 0.1),
        FREE_AIR_DELIVERY: u16(c.air_flow_m3min, 0.01),
        RUNNING_HOURS: u32(c.running_h, 0.01),
        LOADED_HOURS: u32(c.loaded_h, 0.01),
        ENERGY: u32(c.energy_kwh, 0.1),
        DISCHARGE_TEMPERATURE: i16(c.temperature_c, 0.1),
    }
    return {TABLE: {0: block(points, 0, SIZE)}}
