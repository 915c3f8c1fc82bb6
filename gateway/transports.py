"""Which physical bus a Modbus device sits on, and the one pymodbus client that talks to it.

A bus is a TCP endpoint (host, port, framing) or a serial port. Everything on one bus shares
one connection: RS-485 is half-duplex, and most TCP gateways serve one client at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType

from gateway.config import Device

ModbusClient = AsyncModbusTcpClient | AsyncModbusSerialClient

MODBUS_PROTOCOLS = ("modbus-tcp", "modbus-rtu", "modbus-rtu-over-tcp")


@dataclass(frozen=True)
class BusKey:
    kind: str  # one of MODBUS_PROTOCOLS
    host: str  # TCP host, or the serial port path
    port: int = 0  # TCP port; 0 for serial
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def serial(self) -> bool:
        return self.kind == "modbus-rtu"

    @property
    def name(self) -> str:
        if self.serial:
            return f"{self.host}@{self.baudrate}{self.parity}{self.bytesize}{self.stopbits}"
        return f"{self.kind}://{self.host}:{self.port}"


def bus_key(device: Device) -> BusKey:
    if device.protocol == "modbus-rtu":
        assert device.serial is not None  # the config schema guarantees it
        s = device.serial
        return BusKey("modbus-rtu", s.port, 0, s.baudrate, s.parity, s.stopbits, s.bytesize)
    if device.protocol not in MODBUS_PROTOCOLS:
        raise ValueError(f"{device.id}: {device.protocol} is not a Modbus protocol")
    assert device.host is not None
    return BusKey(device.protocol, device.host, device.port)


def same_line(a: BusKey, b: BusKey) -> bool:
    """Two keys that name the same wire (a serial port opened with different settings is a clash)."""
    return a.kind == b.kind == "modbus-rtu" and a.host == b.host


def make_client(key: BusKey, timeout: float) -> ModbusClient:
    """A client that never retries or reconnects on its own: the bus loop decides both,
    so a dead device costs exactly one timeout and reconnects follow the gateway's backoff."""
    if key.serial:
        return AsyncModbusSerialClient(
            key.host, framer=FramerType.RTU, baudrate=key.baudrate, parity=key.parity,
            stopbits=key.stopbits, bytesize=key.bytesize, timeout=timeout, retries=0,
            reconnect_delay=0,
        )
    framer = FramerType.RTU if key.kind == "modbus-rtu-over-tcp" else FramerType.SOCKET
    return AsyncModbusTcpClient(key.host, port=key.port, framer=framer, timeout=timeout,
                                retries=0, reconnect_delay=0)


def set_request_timeout(client: ModbusClient, seconds: float) -> None:
    """Devices on one bus may have different timeouts; pymodbus keeps one per client.

    The bus loop sends one request at a time, so switching it before each request is safe.
    """
    client.ctx.comm_params.timeout_connect = seconds
