"""Modbus collector: one client and one task per bus, the bus's devices polled in turn.

A bus is a TCP endpoint (Modbus TCP, or RTU frames over TCP) or a serial port (RTU). Requests
on a bus never overlap. A device that does not answer costs one timeout per attempt and then
backs off exponentially, so live devices on the same bus keep their rate; devices on other
buses live in other tasks and never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.config import Device
from gateway.decode import DecodeError, bit_of, is_not_implemented, raw_value, to_canonical
from gateway.health import HealthRegistry
from gateway.plan import FUNCTION_CODES, ReadBlock, Slot, plan_reads, resolve_slots
from gateway.transports import BusKey, ModbusClient, bus_key, make_client, same_line, set_request_timeout
from lingtan.kernel.reading import Reading

log = logging.getLogger(__name__)

Emit = Callable[[list[Reading]], None]

MAX_BACKOFF_S = 60.0
# Consecutive unanswered requests after which a TCP connection is presumed half-open and
# reopened; any reply (even an exception) from any device resets the count.
SILENT_BEFORE_RECONNECT = 3

EXCEPTION_MEANINGS = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
# Exception codes that mean "nobody is there" rather than "this range is wrong".
ABSENT_CODES = {0x0A, 0x0B}


class DeviceError(Exception):
    """A device-level failure, already described with device and point."""


class NoReply(DeviceError):
    """No answer (timeout, or a gateway saying the device is absent): end the device's cycle."""


class ExceptionReply(DeviceError):
    """The device answered with a Modbus exception for one request; other requests may work."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class LinkDown(DeviceError):
    """The connection itself failed; the bus reconnects."""


def exception_meaning(code: int) -> str:
    return EXCEPTION_MEANINGS.get(code, "unknown exception code")


@dataclass
class DeviceState:
    device: Device
    blocks: list[ReadBlock] | None = None  # None until planned (SunSpec needs the chain first)
    next_due: float = 0.0
    failures: int = 0  # consecutive failed polls
    last_success: datetime | None = None
    last_error: str | None = None
    polls: int = 0
    backoff_s: float = 0.0  # the current wait after a failure (0 while healthy)
    health: HealthRegistry | None = None  # told of every poll outcome, when the gateway has one


@dataclass
class Bus:
    key: BusKey
    devices: list[DeviceState] = field(default_factory=list)
    silent: int = 0  # consecutive requests without any reply
    connects: int = 0  # successful connects (reconnects after the first)

    @property
    def host(self) -> str:
        return self.key.host

    @property
    def port(self) -> int:
        return self.key.port

    @property
    def name(self) -> str:
        return self.key.name


def group_by_bus(devices: list[Device], health: HealthRegistry | None = None) -> list[Bus]:
    """One Bus per physical line; many unit ids on a line share its one connection."""
    buses: dict[BusKey, Bus] = {}
    for device in devices:
        key = bus_key(device)
        for other in buses:
            if other != key and same_line(other, key):
                first = buses[other].devices[0].device.id
                raise ValueError(
                    f"devices {first} and {device.id} share serial port {key.host} "
                    f"with different settings ({other.name} vs {key.name})"
                )
        buses.setdefault(key, Bus(key)).devices.append(DeviceState(device, health=health))
    return list(buses.values())


def _describe(table: str, start: int, count: int) -> str:
    return f"{table} FC{FUNCTION_CODES[table]:02d} {start:#06x}+{count}"


async def _read(client: ModbusClient, device: Device, table: str, start: int, count: int,
                points: str = "") -> list[int]:
    readers = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }
    what = _describe(table, start, count) + (f" ({points})" if points else "")
    # pymodbus's own timeout is a backstop a little longer than ours, so ours decides and
    # pymodbus never counts the miss towards closing a connection on its own.
    set_request_timeout(client, device.timeout + 1.0)
    try:
        reply = await asyncio.wait_for(
            readers[table](start, count=count, device_id=device.unit), timeout=device.timeout
        )
    except TimeoutError:
        raise NoReply(f"{device.id} (unit {device.unit}): no reply to {what} within "
                      f"{device.timeout:g}s") from None
    except ConnectionException as exc:
        raise LinkDown(f"{device.id}: connection failed reading {what}: {exc}") from None
    except ModbusIOException as exc:
        raise NoReply(f"{device.id} (unit {device.unit}): no valid reply to {what}: {exc}") from None
    except ModbusException as exc:
        raise DeviceError(f"{device.id}: {what}: {exc}") from None
    if reply.isError():
        code = int(getattr(reply, "exception_code", 0) or 0)
        message = (f"{device.id} (unit {device.unit}): Modbus exception {code:#04x} "
                   f"({exception_meaning(code)}) reading {what}")
        if code in ABSENT_CODES:
            raise NoReply(message)
        raise ExceptionReply(message, code)
    if table in ("coil", "discrete"):
        return [int(b) for b in reply.bits[:count]]
    return list(reply.registers)


async def walk_sunspec(client: ModbusClient, device: Device) -> dict[int, int]:
    """Model id → address of its ID register, following the chain from the SunSpec base."""
    base = device.sunspec_base
    marker = await _read(client, device, "holding", base, 2, "SunSpec marker")
    if marker != [0x5375, 0x6E53]:
        raise DeviceError(f"{device.id}: no SunSpec marker 'SunS' at {base}")
    models: dict[int, int] = {}
    address = base + 2
    for _ in range(64):
        model_id, length = await _read(client, device, "holding", address, 2, "SunSpec model header")
        if model_id == 0xFFFF:
            return models
        models.setdefault(model_id, address)
        address += 2 + length
    raise DeviceError(f"{device.id}: SunSpec model chain has no end marker")


def decode_block(device: Device, block: ReadBlock, registers: list[int], at: datetime,
                 errors: list[str] | None = None) -> list[Reading]:
    """The block's readings; a point that cannot be decoded raises, or is noted in ``errors``."""
    def regs(address: int, count: int) -> list[int]:
        offset = address - block.start
        return registers[offset : offset + count]

    out = []
    for slot in block.slots:
        try:
            out.extend(_decode_slot(device, slot, regs, at))
        except DeviceError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
    return out


def _decode_slot(device: Device, slot: Slot, regs: Callable[[int, int], list[int]],
                 at: datetime) -> list[Reading]:
    point = slot.point
    words = regs(slot.address, point.register_count)
    try:
        if point.bit is not None:
            value: float | int | str = bit_of(words, point.bit, point.byte_order)
        else:
            if point.model is not None and is_not_implemented(words, point.datatype):
                return []
            value = raw_value(words, point.datatype, point.word_order, point.byte_order)
        if isinstance(value, str):
            return []  # readings are numbers; strings are for commissioning (probe)
        exponent = 0
        if slot.sf_address is not None:
            sf = int(raw_value(regs(slot.sf_address, 1), "int16"))
            if sf == -0x8000:
                return []
            exponent = sf
        return [Reading(at, device.id, point.quantity,
                        to_canonical(point, value, exponent, params=device.params))]
    except (DecodeError, ValueError, OverflowError) as exc:
        raise DeviceError(f"{device.id} point {point.quantity} @ {point.table} {slot.address:#06x}: "
                          f"{exc}") from None


@dataclass
class PollResult:
    readings: list[Reading]
    errors: list[str]  # per-request exceptions and per-point decode errors
    blocks_ok: int


async def poll_device(client: ModbusClient, state: DeviceState) -> PollResult:
    """One cycle. Raises NoReply/LinkDown at the first unanswered request (the rest would only
    time out too); a Modbus exception spoils only its own block."""
    device = state.device
    if state.blocks is None:
        bases = await walk_sunspec(client, device) if device.sunspec else None
        state.blocks = plan_reads(resolve_slots(device, bases), device.max_registers,
                                  device.max_gap)
    at = datetime.now(UTC)
    result = PollResult([], [], 0)
    for block in state.blocks:
        points = ", ".join(dict.fromkeys(s.point.quantity for s in block.slots))
        try:
            registers = await _read(client, device, block.table, block.start, block.count, points)
        except ExceptionReply as exc:
            result.errors.append(str(exc))
            continue
        result.blocks_ok += 1
        result.readings.extend(decode_block(device, block, registers, at, result.errors))
    return result


async def run_bus(bus: Bus, emit: Emit, stop: asyncio.Event) -> None:
    """Poll every device on the bus on its own schedule until ``stop`` is set; never gives up."""
    timeout = max(s.device.timeout for s in bus.devices)
    client = make_client(bus.key, timeout)
    try:
        while not stop.is_set():
            # Earliest due first: after a dead device's timeout, the live ones that became due
            # meanwhile go next instead of waiting behind it.
            state = min(bus.devices, key=lambda s: s.next_due)
            wait = state.next_due - time.monotonic()
            if wait > 0:
                await _sleep(stop, wait)
                continue
            if not client.connected and not await _connect(client, bus, timeout):
                reason = f"cannot connect to {bus.name}"
                now = time.monotonic()
                for due in bus.devices:
                    if due.next_due <= now:
                        _failed(due, reason)
                continue
            await _poll_once(client, bus, state, emit)
    finally:
        client.close()


async def _connect(client: ModbusClient, bus: Bus, timeout: float) -> bool:
    set_request_timeout(client, timeout)  # pymodbus uses it as the connect timeout as well
    try:
        ok = await client.connect()
    except (OSError, ModbusException) as exc:
        log.warning("cannot connect", extra={"bus": bus.name, "error": str(exc)})
        return False
    if not ok:
        log.warning("cannot connect", extra={"bus": bus.name})
        return False
    bus.connects += 1
    bus.silent = 0
    if bus.connects > 1:
        log.info("bus reconnected", extra={"bus": bus.name, "connects": bus.connects})
    return True


async def _poll_once(client: ModbusClient, bus: Bus, state: DeviceState, emit: Emit) -> None:
    device = state.device
    state.polls += 1
    started = time.monotonic()
    try:
        result = await poll_device(client, state)
    except NoReply as exc:
        bus.silent += 1
        if bus.silent >= SILENT_BEFORE_RECONNECT and not bus.key.serial:
            log.warning("no replies on the bus; reconnecting", extra={"bus": bus.name})
            client.close()
        _failed(state, str(exc))
        return
    except LinkDown as exc:
        client.close()
        _failed(state, str(exc))
        return
    except DeviceError as exc:
        bus.silent = 0
        _failed(state, str(exc))
        return
    except (ConnectionError, OSError) as exc:
        client.close()
        _failed(state, f"{device.id}: connection lost: {exc}")
        return
    bus.silent = 0
    if result.blocks_ok == 0:
        _failed(state, "; ".join(result.errors))
        return
    _succeeded(state, result)
    if state.health:
        state.health.poll_ok(device.id, time.monotonic() - started, len(result.readings))
    if result.readings:
        emit(result.readings)


def _succeeded(state: DeviceState, result: PollResult) -> None:
    error = "; ".join(result.errors) or None
    if state.failures:
        log.info("device back", extra={"device": state.device.id, "after_failures": state.failures})
    if error and error != state.last_error:
        # logged when it changes, not every cycle: a wrong address would flood the log
        log.warning("some points unreadable", extra={"device": state.device.id, "error": error})
    state.failures = 0
    state.backoff_s = 0.0
    state.last_error = error
    state.last_success = datetime.now(UTC)
    poll = state.device.poll
    now = time.monotonic()
    nxt = state.next_due + poll
    if nxt <= now:  # late (slow bus, or back from backoff): skip missed slots, keep the phase
        nxt += poll * (int((now - nxt) / poll) + 1)
    state.next_due = nxt


def _failed(state: DeviceState, error: str) -> None:
    state.failures += 1
    state.last_error = error
    if state.health:  # here, not in _poll_once: a bus that cannot connect fails its devices too
        state.health.poll_failed(state.device.id, error)
    state.backoff_s = _backoff(state)
    state.next_due = time.monotonic() + state.backoff_s
    if state.device.sunspec:
        state.blocks = None  # walk the chain again: the device may have been replaced
    log.warning("poll failed", extra={"device": state.device.id, "error": error,
                                      "failures": state.failures, "retry_in_s": state.backoff_s})


def _backoff(state: DeviceState) -> float:
    return min(state.device.poll * 2 ** min(state.failures, 10), MAX_BACKOFF_S)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
