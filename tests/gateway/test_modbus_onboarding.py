"""Onboarding a meter no built-in profile knows: an inline `points:` map is all it takes.

"Vendor X" sits on the same bus as the demo plant's meters (unit 42) with its own register
table: int32 power in W, word-swapped (CDAB); a uint32 energy counter in 0.01 kWh; a status
word whose bit 3 says "running"; and a relay state as a coil. The gateway collector reads it
through the inline map, and `lingtan probe modbus` shows the same registers decoded the same.
"""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.modbus_server import build_devices
from simulators.registers import device_images
from simulators.registers.encoding import u32
from tests.gateway.modbus_fixtures import (
    Running,
    ServerThread,
    config_devices,
    decoded_value,
    noon_model,
    run_cli,
)

UNIT = 42  # free on the demo bus (its meters are units 1–16)
POWER_W = -48_765  # exporting
ENERGY_KWH = 1_234_567.89
STATUS = 0b1000_0000_0000_1001  # bit 0 and bit 3 (running) and bit 15 set


def _int32_cdab(value: int) -> list[int]:
    raw = value & 0xFFFF_FFFF
    return [raw & 0xFFFF, raw >> 16]  # low word first


def vendor_x() -> SimDevice:
    holding = [0] * 16
    holding[0:2] = _int32_cdab(POWER_W)
    holding[2:4] = u32(ENERGY_KWH, 0.01)
    holding[8] = STATUS
    coils = [False, False, True, False, False, False, False, False]  # relay at coil 2 is closed
    return SimDevice(UNIT, simdata=(
        [SimData(0, values=coils, datatype=DataType.BITS)],
        [SimData(0, values=[False] * 8, datatype=DataType.BITS)],
        [SimData(0x100, values=holding, datatype=DataType.REGISTERS)],
        [SimData(0, count=1, datatype=DataType.INVALID)],
    ))


INLINE_POINTS = [
    {"quantity": "active_power", "address": 0x100, "datatype": "int32", "word_order": "little",
     "unit": "W"},
    {"quantity": "active_energy_import", "address": 0x102, "datatype": "uint32", "scale": 0.01,
     "unit": "kWh"},
    {"quantity": "state", "address": 0x108, "bit": 3},
]


@pytest.fixture
def bus() -> ServerThread:  # type: ignore[misc]
    server = ServerThread([*build_devices(device_images(noon_model())), vendor_x()])
    yield server
    server.stop()


def test_unknown_meter_onboarded_by_inline_points(bus: ServerThread) -> None:
    devices = config_devices([
        {"id": "vendor-x-1", "protocol": "modbus-tcp", "host": "127.0.0.1", "port": bus.port,
         "unit": UNIT, "poll": "200ms", "points": INLINE_POINTS},
        {"id": "vendor-x-relay", "protocol": "modbus-tcp", "host": "127.0.0.1", "port": bus.port,
         "unit": UNIT, "poll": "200ms", "points": [{"quantity": "state", "table": "coil", "address": 2}]},
        {"id": "grid-incomer", "protocol": "modbus-tcp", "host": "127.0.0.1", "port": bus.port,
         "unit": 1, "poll": "200ms", "profile": "eastron-sdm630"},
    ])

    async def scenario() -> dict[str, dict[str, float]]:
        run = Running(devices)
        try:
            await run.wait_for(lambda: all(run.got.cycles(d.id) >= 2 for d in devices))
            return {d.id: run.got.latest(d.id) for d in devices}
        finally:
            await run.stop()

    got = asyncio.run(scenario())
    x = got["vendor-x-1"]
    assert x["active_power"] == pytest.approx(POWER_W / 1000.0)  # canonical kW
    assert x["active_energy_import"] == pytest.approx(ENERGY_KWH, abs=0.005)
    assert x["state"] == 1.0
    assert got["vendor-x-relay"] == {"state": 1.0}
    assert "active_power" in got["grid-incomer"]  # the plant's own meter on the same bus

    # The engineer's view of the same registers: the CDAB line is the right one.
    r = run_cli("probe", "modbus", f"127.0.0.1:{bus.port}", "--unit", str(UNIT), "--address",
                "0x100", "--datatype", "int32", "--word-order", "little")
    assert r.returncode == 0, r.stderr
    assert decoded_value(r.stdout, "int32") == POWER_W
    cdab = next(line for line in r.stdout.splitlines() if line.strip().startswith("CDAB"))
    assert f"int32={POWER_W} " in cdab and cdab.endswith("←")
    r = run_cli("probe", "modbus", f"127.0.0.1:{bus.port}", "--unit", str(UNIT), "--address",
                "0x102", "--datatype", "uint32")
    assert decoded_value(r.stdout, "uint32") * 0.01 == pytest.approx(ENERGY_KWH, abs=0.005)
    r = run_cli("probe", "modbus", f"127.0.0.1:{bus.port}", "--unit", str(UNIT), "--address",
                "0x108")
    assert f"0x{STATUS:04X}" in r.stdout and f"{STATUS:016b}" in r.stdout
    r = run_cli("probe", "modbus", f"127.0.0.1:{bus.port}", "--unit", str(UNIT), "--table", "coil",
                "--address", "2")
    assert r.stdout.strip().splitlines()[-1].split()[-1] == "1"
