"""The simulated meters over Modbus RTU: on a serial port, or RTU frames over a TCP socket.

Same units and register images as the Modbus TCP server (``simulators.modbus_server``);
only the framing and the wire differ, so a gateway configured for RTU sees the same truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimDevice

from simulators.modbus_server import build_devices, check_port_free, publish_image
from simulators.registers import Image, device_images
from simulators.site import SiteModel


@dataclass
class RtuHandle:
    server: ModbusSerialServer | ModbusTcpServer
    where: str  # serial port path, or host:port

    async def publish(self, model: SiteModel) -> None:
        await publish_image(self.server, device_images(model))

    async def stop(self) -> None:
        await self.server.shutdown()


def _devices(model: SiteModel | None, extra: list[SimDevice] | None) -> list[SimDevice]:
    image: Image = device_images(model) if model is not None else {}
    return build_devices(image) + list(extra or [])


def _silence_absent(devices: list[SimDevice]) -> Callable[[bool, bytes], bytes]:
    """On RS-485 an absent unit never answers. The device list keeps the TCP gateway's id-0
    catch-all (pymodbus fails inside without one); its 0x0B replies are dropped on the way out.
    An RTU frame starts with the unit id."""
    served = {d.id for d in devices if d.id != 0}

    def trace(sending: bool, data: bytes) -> bytes:
        if sending and data and data[0] not in served:
            return b""
        return data

    return trace


async def start_rtu_server(port: str, model: SiteModel | None, *, baudrate: int = 9600,
                           parity: str = "N", stopbits: int = 1, bytesize: int = 8,
                           extra: list[SimDevice] | None = None) -> RtuHandle:
    """Serve the model's meters (plus ``extra`` devices) as RTU slaves on a serial port."""
    devices = _devices(model, extra)
    server = ModbusSerialServer(
        devices, framer=FramerType.RTU, port=port, baudrate=baudrate, parity=parity,
        stopbits=stopbits, bytesize=bytesize, trace_packet=_silence_absent(devices),
    )
    await server.serve_forever(background=True)
    return RtuHandle(server, port)


async def start_rtu_over_tcp_server(host: str, port: int, model: SiteModel | None, *,
                                    extra: list[SimDevice] | None = None) -> tuple[RtuHandle, int]:
    """RTU frames (CRC, no MBAP header) on a TCP socket, as serial device servers forward them.

    Returns the handle and the bound port (port 0 picks a free one)."""
    check_port_free(host, port)
    # A transparent serial device server forwards frames as they are: absent units stay silent.
    devices = _devices(model, extra)
    server = ModbusTcpServer(devices, framer=FramerType.RTU, address=(host, port),
                             trace_packet=_silence_absent(devices))
    await server.serve_forever(background=True)
    bound = server.transport.sockets[0].getsockname()[1] if port == 0 else port  # type: ignore[union-attr]
    return RtuHandle(server, f"{host}:{bound}"), bound
