"""Registers → numbers: data type, word and byte order, scaling, unit conversion."""

from __future__ import annotations

import struct
from collections.abc import Mapping

from gateway.config import Point
from lingtan.kernel.quantities import conversion

_STRUCT = {
    "int16": ">h", "uint16": ">H", "bool": ">H",
    "int32": ">i", "uint32": ">I", "acc32": ">I", "float32": ">f",
    "int64": ">q", "uint64": ">Q", "float64": ">d",
}

# SunSpec "not implemented" values (SunSpec Information Model Specification, section 6).
SUNSPEC_NOT_IMPLEMENTED = {"int16": 0x8000, "uint16": 0xFFFF, "acc32": 0, "int32": 0x80000000,
                           "uint32": 0xFFFFFFFF}


class DecodeError(ValueError):
    pass


def registers_to_bytes(registers: list[int], word_order: str = "big", byte_order: str = "big") -> bytes:
    """Reorder to one big-endian byte string (ABCD), whatever order the device uses."""
    words = list(registers) if word_order == "big" else list(reversed(registers))
    out = bytearray()
    for word in words:
        hi, lo = (word >> 8) & 0xFF, word & 0xFF
        out += bytes((hi, lo)) if byte_order == "big" else bytes((lo, hi))
    return bytes(out)


def raw_value(registers: list[int], datatype: str, word_order: str = "big",
              byte_order: str = "big") -> float | int | str:
    """The unscaled value the registers hold."""
    data = registers_to_bytes(registers, word_order, byte_order)
    if datatype == "string":
        return data.rstrip(b"\x00 ").decode("ascii", errors="replace")
    fmt = _STRUCT[datatype]
    if len(data) != struct.calcsize(fmt):
        raise DecodeError(f"{datatype} needs {struct.calcsize(fmt) // 2} registers, got {len(registers)}")
    return struct.unpack(fmt, data)[0]


def is_not_implemented(registers: list[int], datatype: str) -> bool:
    sentinel = SUNSPEC_NOT_IMPLEMENTED.get(datatype)
    if sentinel is None:
        return False
    return int.from_bytes(registers_to_bytes(registers), "big") == sentinel


def bit_of(registers: list[int], bit: int, byte_order: str = "big") -> int:
    """One bit of a status register, 0 = least significant (after any byte swap)."""
    if not registers:
        raise DecodeError("a bit point needs one register")
    word = int.from_bytes(registers_to_bytes(registers[:1], "big", byte_order), "big")
    return (word >> bit) & 1


def ratio_factor(point: Point, params: Mapping[str, float] | None) -> float:
    """The product of the device params the point names in `ratios` (CT × PT, pulse weight …)."""
    factor = 1.0
    for name in point.ratios:
        if params is None or name not in params:
            # never fall back to 1: a secondary-side value stored as primary is off by the
            # whole transformer ratio (×40 for a 200/5 A CT) and still looks plausible
            raise DecodeError(f"point {point.quantity} needs device param {name!r}")
        factor *= float(params[name])
    return factor


def to_canonical(point: Point, raw: float | int, scale_exponent: int = 0, *,
                 params: Mapping[str, float] | None = None) -> float:
    """raw × scale + offset (× 10^SF for SunSpec), × the point's `ratios` taken from the device
    `params` (secondary → primary side), then into the quantity's canonical unit."""
    value = float(raw) * point.scale * (10.0 ** scale_exponent) + point.offset
    if point.ratios:
        value *= ratio_factor(point, params)
    factor, offset = conversion(point.unit, point.quantity)
    return value * factor + offset
