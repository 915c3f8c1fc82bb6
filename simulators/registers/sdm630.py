"""Eastron SDM630 images: the grid incomer and the feeders' sub-meters. FC04 input registers,
float32 ABCD."""

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
# A load's own power factor (motors, drives and LED drivers behind one feeder).
SUBMETER_POWER_FACTOR = 0.92


def image(g: GridState) -> dict[str, dict[int, list[int]]]:
    return _image(g.power_kw, g.import_kwh, g.export_kwh, g.voltage_v, g.current_a, g.power_factor,
                  g.frequency_hz)


def meter_image(power_kw: float, import_kwh: float, voltage_v: list[float],
                frequency_hz: float) -> dict[str, dict[int, list[int]]]:
    """A sub-meter on the plant's busbar: it sees the incomer's voltage and frequency, and only
    ever imports."""
    pf = SUBMETER_POWER_FACTOR
    phase_w = power_kw * 1000.0 / 3.0
    return _image(power_kw, import_kwh, 0.0, voltage_v, [phase_w / (v * pf) for v in voltage_v], pf,
                  frequency_hz)


Image = dict[str, dict[int, list[int]]]


def _image(power_kw: float, import_kwh: float, export_kwh: float, voltage_v: list[float],
           current_a: list[float], power_factor: float, frequency_hz: float) -> Image:
    phase_w = power_kw * 1000.0 / 3.0
    points = {
        V_L1: f32_abcd(voltage_v[0]),
        V_L2: f32_abcd(voltage_v[1]),
        V_L3: f32_abcd(voltage_v[2]),
        I_L1: f32_abcd(current_a[0]),
        I_L2: f32_abcd(current_a[1]),
        I_L3: f32_abcd(current_a[2]),
        P_L1: f32_abcd(phase_w),
        P_L2: f32_abcd(phase_w),
        P_L3: f32_abcd(phase_w),
        P_TOTAL: f32_abcd(power_kw * 1000.0),
        POWER_FACTOR: f32_abcd(power_factor),
        FREQUENCY: f32_abcd(frequency_hz),
        IMPORT_KWH: f32_abcd(import_kwh),
        EXPORT_KWH: f32_abcd(export_kwh),
        TOTAL_KWH: f32_abcd(import_kwh + export_kwh),
    }
    return {TABLE: {0: block(points, 0, SIZE)}}
