"""SunSpec image of the PV inverter: "SunS", common model 1, model 103, end marker (FC03).

Only the points listed below are implemented; every other model-103 point carries the
SunSpec "not implemented" value of its type, so clients must honour those sentinels.
"""

from __future__ import annotations

from simulators.models.pv import PvState
from simulators.registers.encoding import ascii_string, block, i16, u16

TABLE = "holding"
BASE = 40000
COMMON = BASE + 2  # model 1 ID register
COMMON_LENGTH = 66
INVERTER = COMMON + 2 + COMMON_LENGTH  # model 103 ID register, 40070
INVERTER_LENGTH = 50
END = INVERTER + 2 + INVERTER_LENGTH  # end marker, 40122
SIZE = END + 2 - BASE

MANUFACTURER = "Lingtan"
MODEL = "SIM-PV-360"
VERSION = "0.1.0"

# Not-implemented values by SunSpec type.
NI_INT16 = 0x8000
NI_UINT16 = 0xFFFF
NI_SUNSSF = 0x8000
NI_ENUM16 = 0xFFFF
NI_BITFIELD32 = [0xFFFF, 0xFFFF]

# Scale factors (value = raw × 10^SF).
A_SF = -1
V_SF = -1
# W is int16, so SF 1 (10 W steps) would overflow at 327.67 kW; clear-sky summer noon
# reaches ~335 kW AC and the inverter 360 kW, hence 100 W steps.
W_SF = 2
HZ_SF = -2
WH_SF = 0
DCW_SF = 2

# Offsets inside model 103, counted from its ID register.
O_A, O_A_SF, O_PHVPHA, O_V_SF, O_W, O_W_SF, O_HZ, O_HZ_SF = 2, 6, 10, 13, 14, 15, 16, 17
O_WH, O_WH_SF, O_DCW, O_DCW_SF, O_ST = 24, 26, 31, 32, 38


def serial_number(seed: int) -> str:
    return f"LTPV{abs(seed) % 10**8:08d}"


def _sf(exp: int) -> list[int]:
    return i16(exp)


def _scale(exp: int) -> float:
    return 10.0**exp


def _common(seed: int, unit: int) -> list[int]:
    return [
        1, COMMON_LENGTH,
        *ascii_string(MANUFACTURER, 16),  # Mn
        *ascii_string(MODEL, 16),  # Md
        *ascii_string("", 8),  # Opt
        *ascii_string(VERSION, 8),  # Vr
        *ascii_string(serial_number(seed), 16),  # SN
        unit,  # DA
        0x8000,  # Pad
    ]


def _inverter_template() -> list[int]:
    """Model 103 with every point not implemented."""
    regs = [103, INVERTER_LENGTH]
    regs += [NI_UINT16] * 4 + [NI_SUNSSF]  # A, AphA..C, A_SF
    regs += [NI_UINT16] * 6 + [NI_SUNSSF]  # PPVphAB..CA, PhVphA..C, V_SF
    regs += [NI_INT16, NI_SUNSSF, NI_UINT16, NI_SUNSSF]  # W, W_SF, Hz, Hz_SF
    regs += [NI_INT16, NI_SUNSSF] * 3  # VA, VAr, PF with their SFs
    regs += [0, 0, NI_SUNSSF]  # WH (acc32: 0 means not implemented), WH_SF
    regs += [NI_UINT16, NI_SUNSSF, NI_UINT16, NI_SUNSSF, NI_INT16, NI_SUNSSF]  # DCA, DCV, DCW
    regs += [NI_INT16] * 4 + [NI_SUNSSF]  # TmpCab, TmpSnk, TmpTrns, TmpOt, Tmp_SF
    regs += [NI_ENUM16, NI_ENUM16]  # St, StVnd
    regs += NI_BITFIELD32 * 6  # Evt1, Evt2, EvtVnd1..4
    if len(regs) != 2 + INVERTER_LENGTH:
        raise AssertionError(f"model 103 template has {len(regs)} registers")
    return regs


_TEMPLATE = _inverter_template()


def image(pv: PvState, seed: int, unit: int, grid_voltage_v: float,
          frequency_hz: float) -> dict[str, dict[int, list[int]]]:
    inv = list(_TEMPLATE)
    w = pv.power_kw * 1000.0
    wh = int(pv.energy_wh) & 0xFFFF_FFFF  # acc32 rolls over like the real counter
    amps = w / (3.0 * grid_voltage_v)  # unity power factor
    points = {
        O_A: u16(amps, _scale(A_SF)), O_A_SF: _sf(A_SF),
        O_PHVPHA: u16(grid_voltage_v, _scale(V_SF)), O_V_SF: _sf(V_SF),
        O_W: i16(w, _scale(W_SF)), O_W_SF: _sf(W_SF),
        O_HZ: u16(frequency_hz, _scale(HZ_SF)), O_HZ_SF: _sf(HZ_SF),
        O_WH: [wh >> 16, wh & 0xFFFF], O_WH_SF: _sf(WH_SF),
        O_DCW: i16(pv.dc_power_kw * 1000.0, _scale(DCW_SF)), O_DCW_SF: _sf(DCW_SF),
        O_ST: [pv.status],
    }
    for offset, values in points.items():
        inv[offset:offset + len(values)] = values
    regs = block({BASE: [0x5375, 0x6E53], COMMON: _common(seed, unit), INVERTER: inv,
                  END: [0xFFFF, 0x0000]}, BASE, SIZE)
    return {TABLE: {BASE: regs}}
