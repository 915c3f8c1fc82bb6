"""`lingtan probe modbus`: one commissioning read, shown raw and decoded every plausible way.

Field engineers rarely know a meter's word and byte order for sure; seeing the same registers
as ABCD, CDAB, BADC and DCBA side by side makes the right one obvious (the one that reads
230 V, not 1.2e-38).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from pymodbus.exceptions import ModbusException

from gateway.collectors.modbus import exception_meaning
from gateway.config import REGISTERS_PER_TYPE
from gateway.decode import DecodeError, raw_value
from gateway.plan import FUNCTION_CODES, MAX_BITS
from gateway.transports import BusKey, make_client, set_request_timeout

TABLES = ("holding", "input", "coil", "discrete")
DATATYPES = (*tuple(REGISTERS_PER_TYPE), "string")
# label → (word order, byte order); A is the most significant byte
ORDERS = {"ABCD": ("big", "big"), "CDAB": ("little", "big"), "BADC": ("big", "little"),
          "DCBA": ("little", "little")}
SAME_WIDTH = {1: ("uint16", "int16"), 2: ("float32", "int32", "uint32"),
              4: ("float64", "int64", "uint64")}


class ProbeError(Exception):
    """A one-line, human explanation of why the read failed."""


@dataclass(frozen=True)
class ProbeRequest:
    unit: int
    address: int
    count: int
    table: str = "holding"
    datatype: str = "uint16"
    word_order: str = "big"
    byte_order: str = "big"
    timeout: float = 3.0


def parse_host(text: str, default_port: int = 502) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port`."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host:
        raise ProbeError(f"no host in {text!r}")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ProbeError(f"port {port!r} is not a number") from None
    if not 0 < number < 65536:
        raise ProbeError(f"port {number} is out of range")
    return host, number


def parse_address(text: str) -> int:
    """Decimal or 0x-hex (register maps print both)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise ProbeError(f"address {text!r} is not a number (use 52 or 0x34)") from None
    if not 0 <= value <= 0xFFFF:
        raise ProbeError(f"address {value} is outside 0…65535")
    return value


def default_count(datatype: str, table: str) -> int:
    if table in ("coil", "discrete") or datatype not in REGISTERS_PER_TYPE:
        return 1  # strings: one register unless told; unknown types are refused later
    return REGISTERS_PER_TYPE[datatype]


def check_request(req: ProbeRequest) -> None:
    if req.table not in TABLES:
        raise ProbeError(f"table {req.table!r}: use one of {', '.join(TABLES)}")
    if req.datatype not in DATATYPES:
        raise ProbeError(f"datatype {req.datatype!r}: use one of {', '.join(DATATYPES)}")
    limit = MAX_BITS if req.table in ("coil", "discrete") else 125
    if not 1 <= req.count <= limit:
        raise ProbeError(f"count {req.count}: one {req.table} read takes 1…{limit}")
    width = REGISTERS_PER_TYPE.get(req.datatype, 1)
    if req.table in ("holding", "input") and req.count < width:
        raise ProbeError(f"{req.datatype} needs {width} registers; --count is {req.count}")


def _precheck_tcp(host: str, port: int, timeout: float) -> None:
    # pymodbus only says "not connected"; a plain socket tells refused from unreachable.
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        raise ProbeError(f"cannot connect to {host}:{port}: connection refused "
                         "(nothing listens there; check IP and port)") from None
    except TimeoutError:
        raise ProbeError(f"cannot connect to {host}:{port}: no answer within {timeout:g}s "
                         "(host down or port filtered)") from None
    except OSError as exc:
        raise ProbeError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None


async def read_registers(key: BusKey, req: ProbeRequest) -> list[int]:
    """One request; registers (or 0/1 bits for coil/discrete tables)."""
    check_request(req)
    if not key.serial:
        await asyncio.to_thread(_precheck_tcp, key.host, key.port, req.timeout)
    client = make_client(key, req.timeout)
    try:
        if not await client.connect():
            raise ProbeError(f"cannot open {key.name}")
        set_request_timeout(client, req.timeout + 1.0)
        reader = {"holding": client.read_holding_registers, "input": client.read_input_registers,
                  "coil": client.read_coils, "discrete": client.read_discrete_inputs}[req.table]
        what = f"unit {req.unit} {req.table} FC{FUNCTION_CODES[req.table]:02d} " \
               f"{req.address:#06x}+{req.count}"
        try:
            reply = await asyncio.wait_for(reader(req.address, count=req.count, device_id=req.unit),
                                           timeout=req.timeout)
        except (TimeoutError, ModbusException):
            hint = {"modbus-tcp": " (wrong unit id? a serial device server needs --rtu-over-tcp)",
                    "modbus-rtu-over-tcp": " (wrong unit id? plain Modbus TCP needs no --rtu-over-tcp)",
                    "modbus-rtu": " (wrong unit id, baud rate or parity? A and B swapped?)"}[key.kind]
            raise ProbeError(f"no reply from {what} on {key.name} within {req.timeout:g}s{hint}") \
                from None
        if reply.isError():
            code = int(getattr(reply, "exception_code", 0) or 0)
            raise ProbeError(f"Modbus exception {code:#04x} ({exception_meaning(code)}) "
                             f"reading {what}")
        if req.table in ("coil", "discrete"):
            return [int(b) for b in reply.bits[:req.count]]
        return list(reply.registers)
    finally:
        client.close()


def _fmt(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.9g}"
    return str(value)


def _decode(words: list[int], datatype: str, word_order: str, byte_order: str) -> str:
    try:
        return _fmt(raw_value(words, datatype, word_order, byte_order))
    except (DecodeError, ValueError) as exc:
        return f"(cannot decode: {exc})"


def format_result(req: ProbeRequest, registers: list[int]) -> str:
    fc = FUNCTION_CODES[req.table]
    lines = [f"unit {req.unit}  {req.table} (FC{fc:02d})  address {req.address:#06x} ({req.address})"
             f"  count {req.count}"]
    if req.table in ("coil", "discrete"):
        for i, bit in enumerate(registers):
            lines.append(f"  {req.address + i:#06x} ({req.address + i:5d})  {bit}")
        return "\n".join(lines)
    lines.append("raw registers:")
    for i, reg in enumerate(registers):
        a = req.address + i
        lines.append(f"  {a:#06x} ({a:5d})  0x{reg:04X}  {reg:5d}  {reg:016b}")
    width = default_count(req.datatype, req.table)
    words = registers if req.datatype == "string" else registers[:width]
    value = _decode(words, req.datatype, req.word_order, req.byte_order)
    lines.append(f"{req.datatype} (word order {req.word_order}, byte order {req.byte_order}): {value}")
    if req.datatype == "string":
        return "\n".join(lines)
    types = SAME_WIDTH[len(words)]
    lines.append("every order, " + ", ".join(types) + ":")
    orders = ORDERS if len(words) > 1 else {"AB": ("big", "big"), "BA": ("big", "little")}
    for label, (wo, bo) in orders.items():
        values = "  ".join(f"{t}={_decode(words, t, wo, bo)}" for t in types)
        chosen = " ←" if (wo, bo) == (req.word_order, req.byte_order) or (
            len(words) == 1 and bo == req.byte_order) else ""
        lines.append(f"  {label:4} (word {wo:6}, byte {bo:6})  {values}{chosen}")
    return "\n".join(lines)


def probe(key: BusKey, req: ProbeRequest) -> str:
    """Read and format; raises ProbeError with a one-line message."""
    registers = asyncio.run(read_registers(key, req))
    return format_result(req, registers)
