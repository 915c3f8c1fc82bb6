"""Value → 16-bit register encodings used by the simulated meters."""

from __future__ import annotations

import math
import struct


def _sat(raw: int, lo: int, hi: int) -> int:
    # Real devices saturate rather than wrap when a value outgrows its register.
    return lo if raw < lo else hi if raw > hi else raw


def scaled(value: float, scale: float) -> int:
    """Round ``value / scale`` to the nearest integer (``value = raw × scale``)."""
    return round(value / scale) if math.isfinite(value) else 0


def u16(value: float, scale: float = 1.0) -> list[int]:
    return [_sat(scaled(value, scale), 0, 0xFFFF)]


def i16(value: float, scale: float = 1.0) -> list[int]:
    return [_sat(scaled(value, scale), -0x8000, 0x7FFF) & 0xFFFF]


def u32(value: float, scale: float = 1.0) -> list[int]:
    """Unsigned 32-bit, high word first."""
    raw = _sat(scaled(value, scale), 0, 0xFFFF_FFFF)
    return [raw >> 16, raw & 0xFFFF]


def f32_abcd(value: float) -> list[int]:
    """IEEE-754 float32, high word first (Modbus "big-endian")."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def f32_cdab(value: float) -> list[int]:
    """IEEE-754 float32, low word first (word-swapped, as TUF-2000M meters send it)."""
    hi, lo = f32_abcd(value)
    return [lo, hi]


def ascii_string(text: str, registers: int) -> list[int]:
    """Two ASCII characters per register, first character in the high byte, NUL padded."""
    data = text.encode("ascii")
    if len(data) > 2 * registers:
        raise ValueError(f"{text!r} does not fit in {registers} registers")
    data = data.ljust(2 * registers, b"\x00")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def block(points: dict[int, list[int]], start: int, size: int) -> list[int]:
    """One contiguous register block; addresses no point covers read as 0.

    Gaps are readable on purpose: a gateway that merges neighbouring points into one
    request (≤ 125 registers) reads straight across them, as it would on the real meter.
    """
    regs = [0] * size
    for address, values in points.items():
        offset = address - start
        if offset < 0 or offset + len(values) > size:
            raise ValueError(f"point at {address} ({len(values)} regs) is outside the block")
        regs[offset:offset + len(values)] = values
    return regs
