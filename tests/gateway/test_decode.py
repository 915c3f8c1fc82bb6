import struct

import pytest

from gateway.config import Point
from gateway.decode import is_not_implemented, raw_value, registers_to_bytes, to_canonical


def regs(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


ABCD = regs(struct.pack(">f", 1234.5))  # as an ABCD device sends it


@pytest.mark.parametrize(
    ("registers", "word_order", "byte_order"),
    [
        (ABCD, "big", "big"),  # ABCD
        (ABCD[::-1], "little", "big"),  # CDAB
        ([((w & 0xFF) << 8) | (w >> 8) for w in ABCD], "big", "little"),  # BADC
        ([((w & 0xFF) << 8) | (w >> 8) for w in ABCD[::-1]], "little", "little"),  # DCBA
    ],
)
def test_float32_in_every_word_and_byte_order(registers, word_order, byte_order):
    assert raw_value(registers, "float32", word_order, byte_order) == 1234.5


@pytest.mark.parametrize(
    ("datatype", "fmt", "value"),
    [
        ("int16", ">h", -1234),
        ("uint16", ">H", 65000),
        ("int32", ">i", -123456789),
        ("uint32", ">I", 4000000000),
        ("int64", ">q", -(2**40) - 7),
        ("uint64", ">Q", 2**63 + 5),
        ("float64", ">d", 3.141592653589793),
    ],
)
def test_integer_and_double_types(datatype, fmt, value):
    assert raw_value(regs(struct.pack(fmt, value)), datatype) == value


def test_wrong_register_count_is_an_error():
    with pytest.raises(ValueError, match="float32 needs 2 registers"):
        raw_value([1], "float32")


def test_scale_offset_and_unit_conversion():
    point = Point(quantity="active_power", address=0, datatype="int32", scale=0.1, unit="W")
    assert to_canonical(point, 123450) == pytest.approx(12.345)  # 12345.0 W = 12.345 kW
    heat = Point(quantity="heat_energy", address=0, datatype="float32", unit="MJ")
    assert to_canonical(heat, 2500.0) == pytest.approx(2.5)  # GJ


def test_sunspec_scale_factor_exponent():
    point = Point(quantity="active_power", model=103, address=14, datatype="int16",
                  scale_factor=15, unit="W")
    assert to_canonical(point, 2000, scale_exponent=1) == pytest.approx(20.0)  # 20 000 W


def test_sunspec_not_implemented_sentinels():
    assert is_not_implemented([0x8000], "int16")
    assert is_not_implemented([0xFFFF], "uint16")
    assert is_not_implemented([0, 0], "acc32")
    assert not is_not_implemented([0x7FFF], "int16")


def test_bytes_helper_reorders_words():
    assert registers_to_bytes([0x0102, 0x0304], "little") == bytes([3, 4, 1, 2])
