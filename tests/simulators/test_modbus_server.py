"""The register maps over a real Modbus TCP connection, decoded and compared with truth()."""

from __future__ import annotations

import asyncio
import socket

import pytest
from pymodbus.client import ModbusTcpClient

from simulators.modbus_server import PortInUseError, start_modbus_server
from simulators.registers import UNIT_OF
from simulators.site import MODBUS_SUBMETERS
from tests.simulators.conftest import ServedSite
from tests.simulators.decode import f32, i16, text, u32

F32 = 1e-6  # relative precision of float32 (2^-24 ≈ 6e-8, with margin)


def _input(c: ModbusTcpClient, unit: int, address: int, count: int) -> list[int]:
    r = c.read_input_registers(address, count=count, device_id=unit)
    assert not r.isError(), r
    return list(r.registers)


def _holding(c: ModbusTcpClient, unit: int, address: int, count: int) -> list[int]:
    r = c.read_holding_registers(address, count=count, device_id=unit)
    assert not r.isError(), r
    return list(r.registers)


def test_grid_incomer_sdm630(served_site: ServedSite, client: ModbusTcpClient) -> None:
    truth = served_site.model.truth()
    g = served_site.model.grid
    # One merged read across the gaps, as a gateway would do it.
    regs = _input(client, 1, 0x00, 0x4C)

    def at(address: int) -> float:
        return f32(regs[address:address + 2])

    assert at(0x00) == pytest.approx(truth[("grid-incomer", "voltage")], rel=F32)
    assert at(0x02) == pytest.approx(g.voltage_v[1], rel=F32)
    assert at(0x04) == pytest.approx(g.voltage_v[2], rel=F32)
    assert at(0x06) == pytest.approx(truth[("grid-incomer", "current")], rel=F32)
    assert at(0x08) == pytest.approx(g.current_a[1], rel=F32)
    assert at(0x0A) == pytest.approx(g.current_a[2], rel=F32)
    p_w = truth[("grid-incomer", "active_power")] * 1000.0
    for address in (0x0C, 0x0E, 0x10):
        assert at(address) == pytest.approx(p_w / 3.0, rel=F32)
    assert at(0x34) == pytest.approx(p_w, rel=F32)
    assert at(0x3E) == pytest.approx(truth[("grid-incomer", "power_factor")], rel=F32)
    assert at(0x46) == pytest.approx(truth[("grid-incomer", "frequency")], rel=F32)
    imp = truth[("grid-incomer", "active_energy_import")]
    exp = truth[("grid-incomer", "active_energy_export")]
    assert at(0x48) == pytest.approx(imp, rel=F32)
    assert at(0x4A) == pytest.approx(exp, rel=F32)
    assert f32(_input(client, 1, 0x156, 2)) == pytest.approx(imp + exp, rel=F32)


def test_pv_inverter_sunspec_chain(served_site: ServedSite, client: ModbusTcpClient) -> None:
    assert text(_holding(client, 2, 40000, 2)) == "SunS"
    models: list[tuple[int, int, int]] = []
    address = 40002
    while True:
        model_id, length = _holding(client, 2, address, 2)
        if model_id == 0xFFFF:
            assert length == 0
            break
        models.append((model_id, address, length))
        address += 2 + length
    assert models == [(1, 40002, 66), (103, 40070, 50)]
    assert address == 40122

    common = _holding(client, 2, 40002, 68)
    assert text(common[2:18]) == "Lingtan"
    assert text(common[18:34]) == "SIM-PV-360"
    assert text(common[42:50]) == "0.1.0"  # Vr
    assert text(common[50:66]) == "LTPV00000007"  # SN from the seed
    assert common[66] == 2  # DA

    truth = served_site.model.truth()
    inv = _holding(client, 2, 40070, 52)

    def sf(offset: int) -> float:
        return 10.0 ** i16(inv[offset])

    assert truth[("pv-inverter", "active_power")] > 10.0, "pick a time when the sun shines"
    w = i16(inv[14]) * sf(15)
    assert w / 1000.0 == pytest.approx(truth[("pv-inverter", "active_power")], abs=0.05)
    wh = u32(inv[24:26]) * sf(26)
    assert wh / 1000.0 == pytest.approx(truth[("pv-inverter", "active_energy_export")], abs=0.001)
    assert inv[38] == truth[("pv-inverter", "state")] == 4
    assert inv[16] * sf(17) == pytest.approx(truth[("grid-incomer", "frequency")], abs=0.005)
    assert inv[10] * sf(13) == pytest.approx(truth[("grid-incomer", "voltage")], abs=0.05)
    assert inv[2] * sf(6) == pytest.approx(w / (3 * inv[10] * sf(13)), rel=0.01)
    assert inv[31] * sf(32) == pytest.approx(w / 0.97, abs=100)
    # Unimplemented points carry their type's sentinel.
    assert inv[3:6] == [0xFFFF] * 3  # AphA..C uint16
    assert inv[18:24] == [0x8000] * 6  # VA, VAr, PF int16 + their sunssf
    assert inv[33:38] == [0x8000] * 5  # temperatures + Tmp_SF
    assert inv[39] == 0xFFFF  # StVnd enum16
    assert inv[40:52] == [0xFFFF] * 12  # Evt1..EvtVnd4 bitfield32


@pytest.mark.parametrize(("unit", "device"), [(3, "compressor-1"), (4, "compressor-2")])
def test_compressors(served_site: ServedSite, client: ModbusTcpClient, unit: int, device: str) -> None:
    truth = served_site.model.truth()
    regs = _holding(client, unit, 0, 11)
    assert regs[0] * 0.01 == pytest.approx(truth[(device, "air_pressure")], abs=0.005 + 1e-9)
    assert regs[1] == truth[(device, "state")]
    assert regs[2] * 0.1 == pytest.approx(truth[(device, "active_power")], abs=0.05 + 1e-9)
    assert regs[3] * 0.01 == pytest.approx(truth[(device, "air_flow")], abs=0.005 + 1e-9)
    assert u32(regs[4:6]) * 0.01 == pytest.approx(truth[(device, "running_hours")], abs=0.005 + 1e-9)
    assert u32(regs[6:8]) * 0.01 == pytest.approx(truth[(device, "loaded_hours")], abs=0.005 + 1e-9)
    assert u32(regs[8:10]) * 0.1 == pytest.approx(truth[(device, "active_energy_import")],
                                                  abs=0.05 + 1e-9)
    assert i16(regs[10]) * 0.1 == pytest.approx(truth[(device, "temperature")], abs=0.05 + 1e-9)


def test_boiler(served_site: ServedSite, client: ModbusTcpClient) -> None:
    truth = served_site.model.truth()
    regs = _holding(client, 5, 0, 8)
    assert f32(regs[0:2]) == pytest.approx(truth[("boiler", "gas_volume")], rel=F32)
    assert f32(regs[2:4]) == pytest.approx(truth[("boiler", "gas_flow")], rel=F32)
    assert f32(regs[4:6]) == pytest.approx(truth[("boiler", "steam_mass")], rel=F32)
    assert f32(regs[6:8]) == pytest.approx(truth[("boiler", "steam_flow")], rel=F32)


def test_heat_recovery_tuf2000m(served_site: ServedSite, client: ModbusTcpClient) -> None:
    truth = served_site.model.truth()
    hr = served_site.model.heat_recovery
    regs = _holding(client, 6, 0, 36)

    def r(number: int) -> float:  # manual register number, low word first
        return f32(regs[number - 1:number + 1], word_order="little")

    heat_kw = truth[("heat-recovery", "heat_power")]
    assert heat_kw > 0
    assert r(1) == pytest.approx(heat_kw / (4.186 * 10.0) * 3.6, rel=F32)
    assert r(3) == pytest.approx(heat_kw * 0.0036, rel=F32)
    assert r(9) == pytest.approx(truth[("heat-recovery", "water_volume")], rel=F32)
    assert r(17) == pytest.approx(truth[("heat-recovery", "heat_energy")], rel=F32)
    assert r(33) == pytest.approx(truth[("heat-recovery", "temperature")], rel=F32)
    assert r(35) == pytest.approx(hr.return_c, rel=F32)
    assert r(33) - r(35) == pytest.approx(10.0, abs=1e-4)
    # Read big-endian by mistake, the flow is garbage: the word order really is CDAB.
    assert f32(regs[0:2]) != pytest.approx(r(1), rel=0.01)


def test_sub_meters_on_the_bus(served_site: ServedSite, client: ModbusTcpClient) -> None:
    truth = served_site.model.truth()
    assert len(MODBUS_SUBMETERS) >= 5
    for meter in MODBUS_SUBMETERS:
        regs = _input(client, UNIT_OF[meter], 0x34, 0x4C - 0x34)  # the gateway's one read
        assert f32(regs[0:2]) == pytest.approx(truth[(meter, "active_power")] * 1000.0, rel=F32), meter
        assert f32(regs[0x14:0x16]) == pytest.approx(truth[(meter, "active_energy_import")], rel=F32), meter
        assert truth[(meter, "active_power")] > 0


def test_values_follow_the_model(served_site: ServedSite, client: ModbusTcpClient) -> None:
    before = f32(_input(client, 1, 0x48, 2))
    served_site.advance(600)
    after = f32(_input(client, 1, 0x48, 2))
    truth = served_site.model.truth()
    assert after == pytest.approx(truth[("grid-incomer", "active_energy_import")], rel=F32)
    assert after > before


def test_unknown_unit_gets_an_exception_response(client: ModbusTcpClient) -> None:
    for read in (client.read_holding_registers, client.read_input_registers):
        r = read(0, count=2, device_id=42)
        assert r.isError()
        assert r.exception_code == 0x0B  # gateway target device failed to respond
    # The server is still there for real units.
    assert not client.read_holding_registers(0, count=1, device_id=3).isError()


def test_unmapped_address_and_table_are_illegal_address(client: ModbusTcpClient) -> None:
    r = client.read_input_registers(0x200, count=2, device_id=1)
    assert r.isError() and r.exception_code == 0x02
    r = client.read_holding_registers(0, count=2, device_id=1)  # SDM630 points are FC04
    assert r.isError() and r.exception_code == 0x02


def test_port_in_use_names_port_and_setting() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        from datetime import UTC, datetime

        from simulators.site import SiteModel

        model = SiteModel(1, datetime(2026, 1, 1, tzinfo=UTC))
        with pytest.raises(PortInUseError) as err:
            asyncio.run(start_modbus_server("127.0.0.1", port, model))
    assert str(port) in str(err.value)
    assert "LINGTAN_SIM_MODBUS_PORT" in str(err.value)
