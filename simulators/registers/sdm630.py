"""Eastron SDM630 image of the grid incomer: FC04 input registers, float32 ABCD."""

from __future__ import annotations

from simulators.models.grid import GridState
from simulators.registers.encoding import block, f32_abcd

UNIT = 1
TABLE = "input"
V_L1, V_L2, V_L3 = 0x00, 0x02, 0x04
I_L1, I_L2, I_L3 = 0x06, 0x08, 0x0A
P_L1, P_L2, P_L3 = 0x0C, 0x0E, 0x10
P_TOTAL = 0x34  # W, signed: + import
POWER_FACTOR = 0x3E
FREQUENCY = 0x46
IMPORT_KWH = 0x48
EXPORT_KWH = 0x4A
TOTAL_KWH = 0x156  # import + export
SIZE = TOTAL_KWH + 2


def image(g: GridState) -> dict[str, dict[int, list[int]]]:
    phase_w = g.power_kw * 1000.0 / 3.0
    points = {
        V_L1: f32_abcd(g.voltage_v[0]),
        V_L2: f32_abcd(g.voltage_v[1]),
        V_L3: f32_abcd(g.voltage_v[2]),
        I_L1: f32_abcd(g.current_a[0]),
        I_L2: f32_abcd(g.current_a[1]),
        I_L3: f32_abcd(g.current_a[2]),
        P_L1: f32_abcd(phase_w),
        P_L2: f32_abcd(phase_w),
        P_L3: f32_abcd(phase_w),
        P_TOTAL: f32_abcd(g.power_kw * 1000.0),
        POWER_FACTOR: f32_abcd(g.power_factor),
        FREQUENCY: f32_abcd(g.frequency_hz),
        IMPORT_KWH: f32_abcd(g.import_kwh),
        EXPORT_KWH: f32_abcd(g.export_kwh),
        TOTAL_KWH: f32_abcd(g.import_kwh + g.export_kwh),
    }
    return {TABLE: {0: block(points, 0, SIZE)}}
