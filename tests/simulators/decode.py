"""Decoding helpers built on pymodbus's own converters (word order only)."""

from __future__ import annotations

from typing import Literal

from pymodbus.client import ModbusTcpClient

DT = ModbusTcpClient.DATATYPE


def f32(regs: list[int], word_order: Literal["big", "little"] = "big") -> float:
    return float(ModbusTcpClient.convert_from_registers(regs, DT.FLOAT32, word_order=word_order))


def u32(regs: list[int]) -> int:
    return int(ModbusTcpClient.convert_from_registers(regs, DT.UINT32))


def i16(reg: int) -> int:
    return int(ModbusTcpClient.convert_from_registers([reg], DT.INT16))


def text(regs: list[int]) -> str:
    return str(ModbusTcpClient.convert_from_registers(regs, DT.STRING)).rstrip("\x00")
