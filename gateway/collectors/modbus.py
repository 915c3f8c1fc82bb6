"""Modbus TCP collector: one client per bus (host:port), its devices polled in turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway.config import Device
from gateway.decode import DecodeError, is_not_implemented, raw_value, to_canonical
from gateway.plan import ReadBlock, Slot, plan_reads, resolve_slots
from lingtan.reading import Reading

log = logging.getLogger(__name__)

Emit = Callable[[list[Reading]], None]


class DeviceError(Exception):
    """A device-level failure, already described with device and point."""


@dataclass
class DeviceState:
    device: Device
    blocks: list[ReadBlock] | None = None  # None until planned (SunSpec needs the chain first)
    next_due: float = 0.0
    failures: int = 0
    last_success: datetime | None = None
    last_error: str | None = None


@dataclass
class Bus:
    host: str
    port: int
    devices: list[DeviceState] = field(default_factory=list)


def group_by_bus(devices: list[Device]) -> list[Bus]:
    buses: dict[tuple[str, int], Bus] = {}
    for device in devices:
        assert device.host is not None
        key = (device.host, device.port)
        buses.setdefault(key, Bus(device.host, device.port)).devices.append(DeviceState(device))
    return list(buses.values())


async def _read(client: AsyncModbusTcpClient, device: Device, table: str, start: int,
                count: int) -> list[int]:
    readers = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }
    try:
        reply = await asyncio.wait_for(
            readers[table](start, count=count, device_id=device.unit), timeout=device.timeout
        )
    except TimeoutError:
        raise DeviceError(f"{device.id}: no reply to {table} {start}+{count} within "
                          f"{device.timeout:g}s") from None
    except ModbusException as exc:
        raise DeviceError(f"{device.id}: {table} {start}+{count}: {exc}") from None
    if reply.isError():
        code = getattr(reply, "exception_code", "?")
        raise DeviceError(f"{device.id}: Modbus exception {code} reading {table} {start}+{count}")
    if table in ("coil", "discrete"):
        return [int(b) for b in reply.bits[:count]]
    return list(reply.registers)


async def walk_sunspec(client: AsyncModbusTcpClient, device: Device) -> dict[int, int]:
    """Model id → address of its ID register, following the chain from the SunSpec base."""
    base = device.sunspec_base
    marker = await _read(client, device, "holding", base, 2)
    if marker != [0x5375, 0x6E53]:
        raise DeviceError(f"{device.id}: no SunSpec marker 'SunS' at {base}")
    models: dict[int, int] = {}
    address = base + 2
    for _ in range(64):
        model_id, length = await _read(client, device, "holding", address, 2)
        if model_id == 0xFFFF:
            return models
        models.setdefault(model_id, address)
        address += 2 + length
    raise DeviceError(f"{device.id}: SunSpec model chain has no end marker")


def decode_block(device: Device, block: ReadBlock, registers: list[int], at: datetime
                 ) -> list[Reading]:
    def regs(address: int, count: int) -> list[int]:
        offset = address - block.start
        return registers[offset : offset + count]

    out = []
    for slot in block.slots:
        out.extend(_decode_slot(device, slot, regs, at))
    return out


def _decode_slot(device: Device, slot: Slot, regs: Callable[[int, int], list[int]],
                 at: datetime) -> list[Reading]:
    point = slot.point
    words = regs(slot.address, point.register_count)
    try:
        if point.model is not None and is_not_implemented(words, point.datatype):
            return []
        value = raw_value(words, point.datatype, point.word_order, point.byte_order)
        if isinstance(value, str):
            return []
        exponent = 0
        if slot.sf_address is not None:
            sf = int(raw_value(regs(slot.sf_address, 1), "int16"))
            if sf == -0x8000:
                return []
            exponent = sf
        return [Reading(at, device.id, point.quantity, to_canonical(point, value, exponent))]
    except (DecodeError, ValueError, OverflowError) as exc:
        raise DeviceError(f"{device.id} point {point.quantity} @ {slot.address}: {exc}") from None


async def poll_device(client: AsyncModbusTcpClient, state: DeviceState) -> list[Reading]:
    device = state.device
    if state.blocks is None:
        bases = await walk_sunspec(client, device) if device.sunspec else None
        state.blocks = plan_reads(resolve_slots(device, bases), device.max_registers,
                                  device.max_gap)
    at = datetime.now(UTC)
    readings: list[Reading] = []
    for block in state.blocks:
        registers = await _read(client, device, block.table, block.start, block.count)
        readings.extend(decode_block(device, block, registers, at))
    return readings


async def run_bus(bus: Bus, emit: Emit, stop: asyncio.Event) -> None:
    """Poll every device on the bus on its own schedule until ``stop`` is set."""
    client = AsyncModbusTcpClient(bus.host, port=bus.port, timeout=2, retries=0)
    try:
        while not stop.is_set():
            if not client.connected:
                await client.connect()
                if not client.connected:
                    log.warning("cannot connect", extra={"bus": f"{bus.host}:{bus.port}"})
                    await _sleep(stop, 2.0)
                    continue
            now = time.monotonic()
            for state in bus.devices:
                if state.next_due > now or stop.is_set():
                    continue
                await _poll_once(client, state, emit)
                state.next_due = max(state.next_due + state.device.poll, time.monotonic()) \
                    if state.failures == 0 else time.monotonic() + _backoff(state)
            wake = min(s.next_due for s in bus.devices)
            await _sleep(stop, max(0.0, wake - time.monotonic()))
    finally:
        client.close()


async def _poll_once(client: AsyncModbusTcpClient, state: DeviceState, emit: Emit) -> None:
    device = state.device
    try:
        readings = await poll_device(client, state)
    except DeviceError as exc:
        state.failures += 1
        state.last_error = str(exc)
        log.warning("poll failed", extra={"device": device.id, "error": str(exc),
                                          "failures": state.failures})
        if device.sunspec:
            state.blocks = None  # walk the chain again: the device may have been replaced
        return
    except (ConnectionError, OSError) as exc:
        state.failures += 1
        state.last_error = f"{device.id}: connection lost: {exc}"
        log.warning("connection lost", extra={"device": device.id, "error": str(exc)})
        client.close()
        return
    if state.failures:
        log.info("device back", extra={"device": device.id, "after_failures": state.failures})
    state.failures = 0
    state.last_error = None
    state.last_success = datetime.now(UTC)
    emit(readings)


def _backoff(state: DeviceState) -> float:
    return min(state.device.poll * 2 ** min(state.failures, 6), 60.0)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
