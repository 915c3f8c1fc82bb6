"""One Modbus TCP server for all simulated meters, as an RS-485 bus behind a TCP gateway."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.registers import FUNCTION_CODES, Image, device_images
from simulators.site import SiteModel

PORT_ENV = "LINGTAN_SIM_MODBUS_PORT"


class PortInUseError(OSError):
    """The Modbus port is taken; the message names it and the setting that moves it."""


@dataclass
class ModbusHandle:
    server: ModbusTcpServer
    host: str
    port: int  # the bound port (useful when started on port 0)

    async def publish(self, model: SiteModel) -> None:
        """Push the model's current register image to the server.

        Every block is written without yielding to the event loop in between, so a
        client never reads half of a float from one second and half from the next.
        """
        await publish_image(self.server, device_images(model))

    async def stop(self) -> None:
        await self.server.shutdown()


async def publish_image(server: ModbusTcpServer, image: Image) -> None:
    for unit, tables in image.items():
        for table, blocks in tables.items():
            fc = FUNCTION_CODES[table]
            for address, regs in blocks.items():
                await server.async_setValues(unit, fc, address, regs)


def _bits() -> list[SimData]:
    # The simulator needs every block list non-empty; meters have no coils or inputs
    # worth simulating, so each gets 16 unused bits.
    return [SimData(0, count=16, values=False, datatype=DataType.BITS)]


def _registers(blocks: dict[int, list[int]] | None) -> list[SimData]:
    if not blocks:
        # Placeholder so the list is non-empty; reads of it answer "illegal address".
        return [SimData(0, count=1, datatype=DataType.INVALID)]
    return [SimData(a, values=regs, datatype=DataType.REGISTERS) for a, regs in blocks.items()]


async def _no_such_unit(*_args: object) -> ExcCodes:
    # What a TCP/RS-485 gateway answers when nobody on the bus replies to that unit id.
    return ExcCodes.GATEWAY_NO_RESPONSE


def _absent_units() -> SimDevice:
    """Device id 0 catches every unit id not on the bus and answers with exception 0x0B."""
    full = [SimData(0, count=65536, datatype=DataType.REGISTERS)]
    # A list of values, not count=: pymodbus multiplies a BITS count in twice.
    bits = [SimData(0, values=[False] * 65536, datatype=DataType.BITS)]
    return SimDevice(0, simdata=(bits, list(bits), full, list(full)), action=_no_such_unit)


def build_devices(image: Image) -> list[SimDevice]:
    devices = [_absent_units()]
    for unit, tables in image.items():
        devices.append(SimDevice(unit, simdata=(
            _bits(), _bits(), _registers(tables.get("holding")), _registers(tables.get("input")),
        )))
    return devices


def check_port_free(host: str, port: int) -> None:
    """Fail early, and clearly, when another process already listens on the port."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"Modbus TCP port {port} on {host} is already in use; stop the other "
                    f"process or choose a free port with {PORT_ENV}=<port>"
                ) from None
            raise


async def start_modbus_server(host: str, port: int, model: SiteModel) -> ModbusHandle:
    """Serve the model's meters on (host, port); port 0 picks a free one."""
    check_port_free(host, port)
    image = device_images(model)
    server = ModbusTcpServer(build_devices(image), address=(host, port))
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:
        raise PortInUseError(
            f"cannot listen for Modbus TCP on {host}:{port} ({exc}); choose another port "
            f"with {PORT_ENV}=<port>",
        ) from None
    bound = server.transport.sockets[0].getsockname()[1] if port == 0 else port  # type: ignore[union-attr]
    return ModbusHandle(server=server, host=host, port=bound)
