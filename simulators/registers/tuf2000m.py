"""TUF-2000M-style ultrasonic heat meter image: FC03 holding, float32 low word first (CDAB).

The manual numbers registers from 1 (R1, R3, …); the address on the wire is number − 1.
"""

from __future__ import annotations

from simulators.models.heat_recovery import HeatRecoveryState
from simulators.registers.encoding import block, f32_cdab

UNIT = 6
TABLE = "holding"
FLOW = 1 - 1  # R1, m³/h
HEAT_FLOW = 3 - 1  # R3, GJ/h
POSITIVE_TOTALIZER = 9 - 1  # R9, m³
# R17, GJ. Simplification: real TUF-2000M firmware splits accumulators into a long
# integer part and a float fraction over several registers; here it is one float32.
HEAT_ENERGY = 17 - 1
SUPPLY_TEMPERATURE = 33 - 1  # R33, °C (T1)
RETURN_TEMPERATURE = 35 - 1  # R35, °C (T2)
SIZE = RETURN_TEMPERATURE + 2


def image(h: HeatRecoveryState) -> dict[str, dict[int, list[int]]]:
    points = {
        FLOW: f32_cdab(h.flow_m3_h),
        HEAT_FLOW: f32_cdab(h.heat_kw * 3600.0 / 1e6),  # kJ/s → GJ/h
        POSITIVE_TOTALIZER: f32_cdab(h.water_volume_m3),
        HEAT_ENERGY: f32_cdab(h.heat_energy_gj),
        SUPPLY_TEMPERATURE: f32_cdab(h.supply_c),
        RETURN_TEMPERATURE: f32_cdab(h.return_c),
    }
    return {TABLE: {0: block(points, 0, SIZE)}}
