"""Register encodings and image layout, decoded with pymodbus's own converters."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from simulators.models.grid import GridState
from simulators.registers import FUNCTION_CODES, UNITS, device_images, sdm630
from simulators.registers.encoding import ascii_string, f32_abcd, f32_cdab, i16, u16, u32
from simulators.site import MODBUS_SUBMETERS, SiteModel
from tests.simulators.decode import f32, text
from tests.simulators.decode import i16 as dec_i16
from tests.simulators.decode import u32 as dec_u32


def test_word_orders() -> None:
    assert f32_abcd(1.0) == [0x3F80, 0x0000]
    assert f32_cdab(1.0) == [0x0000, 0x3F80]
    assert f32(f32_abcd(-1234.5)) == -1234.5
    assert f32(f32_cdab(-1234.5), word_order="little") == -1234.5


def test_scaled_integers_round_and_saturate() -> None:
    assert u16(7.456, 0.01) == [746]
    assert u16(700.0, 0.1) == [7000]
    assert u16(1e9) == [0xFFFF]
    assert u16(-3.0) == [0]
    assert dec_i16(i16(-12.3, 0.1)[0]) == -123
    assert i16(-1e9) == [0x8000]
    assert dec_u32(u32(22324.51, 0.01)) == 2232451
    assert u32(123456.7, 0.1) == [1234567 >> 16, 1234567 & 0xFFFF]


def test_ascii_strings_are_nul_padded_high_byte_first() -> None:
    regs = ascii_string("Lingtan", 16)
    assert len(regs) == 16
    assert regs[0] == (ord("L") << 8) | ord("i")
    assert regs[3] == ord("n") << 8
    assert text(regs) == "Lingtan"
    with pytest.raises(ValueError):
        ascii_string("x" * 33, 16)


def test_export_shows_as_negative_power() -> None:
    g = GridState(rng=random.Random(1), import_kwh=1.0, export_kwh=2.0, v_noise=[0.0] * 3,
                  hz_noise=0.0, pf_noise=0.0, power_kw=-123.4)
    regs = sdm630.image(g)["input"][0]
    assert f32(regs[0x34:0x36]) == pytest.approx(-123400.0)
    assert f32(regs[0x0C:0x0E]) == pytest.approx(-123400.0 / 3)
    assert f32(regs[0x156:0x158]) == pytest.approx(3.0)


def test_a_sub_meter_imports_at_its_own_power_factor_on_the_incomer_voltage() -> None:
    regs = sdm630.meter_image(23.1, 123456.78, [230.0, 231.0, 232.0], 50.01)["input"][0]
    assert f32(regs[0x34:0x36]) == pytest.approx(23100.0)
    assert f32(regs[0x48:0x4A]) == pytest.approx(123456.78, rel=1e-7)
    assert f32(regs[0x4A:0x4C]) == 0.0
    assert f32(regs[0x02:0x04]) == pytest.approx(231.0)
    assert f32(regs[0x08:0x0A]) == pytest.approx(23100.0 / 3 / (231.0 * 0.92), rel=1e-6)
    assert f32(regs[0x3E:0x40]) == pytest.approx(0.92)


def test_layout_is_fixed() -> None:
    a = device_images(SiteModel(1, datetime(2026, 1, 5, 4, tzinfo=UTC)))
    b = device_images(SiteModel(2, datetime(2026, 7, 5, 4, tzinfo=UTC)))

    def layout(img: dict[int, dict[str, dict[int, list[int]]]]) -> dict:
        return {u: {t: {s: len(r) for s, r in blocks.items()} for t, blocks in tables.items()}
                for u, tables in img.items()}

    assert layout(a) == layout(b) == {
        1: {"input": {0: 0x158}},
        2: {"holding": {40000: 124}},
        3: {"holding": {0: 11}},
        4: {"holding": {0: 11}},
        5: {"holding": {0: 8}},
        6: {"holding": {0: 36}},
        **{7 + i: {"input": {0: 0x158}} for i in range(len(MODBUS_SUBMETERS))},
    }
    assert [UNITS[7 + i] for i in range(len(MODBUS_SUBMETERS))] == list(MODBUS_SUBMETERS)
    assert set(UNITS) == set(a)
    assert FUNCTION_CODES == {"holding": 3, "input": 4}
    for tables in a.values():
        for blocks in tables.values():
            for regs in blocks.values():
                assert all(0 <= r <= 0xFFFF for r in regs)
