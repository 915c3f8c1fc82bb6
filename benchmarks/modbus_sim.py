"""Simulated Modbus TCP buses for the Modbus and memory benchmarks, served from their own process.

Run:  .venv/bin/python -m benchmarks.modbus_sim [--devices 200] [--per-server 20] [--registers 20]

``--devices`` meters are spread over ``ceil(devices / per_server)`` Modbus TCP servers on
127.0.0.1 (like RS-485 lines behind TCP gateways), unit ids 1…per_server on each. Every meter
holds ``registers / 2`` big-endian float32 values from holding register 0, each value unique to
its (meter, point) so a reading routed to the wrong unit or decoded from the wrong word is
caught. The values never change: the benchmarks measure polling, not the simulator.

The parent talks to this process over stdio: it prints one JSON line ``{"ports": [...]}`` once
every server listens, answers each ``stats`` line with ``{"requests": [...]}`` (requests
received per server so far) and shuts down on ``quit`` or end of input.

The servers live in a separate process so the simulator's CPU does not share a GIL with the
gateway under test: on a real site the meters are other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Canonical quantities, one per float32 point; distinct within a device because readings are
# keyed by (meter, quantity). 22 quantities → at most 44 registers per device.
QUANTITIES = (
    "active_power", "reactive_power", "voltage", "current", "frequency", "power_factor",
    "active_energy_import", "active_energy_export", "temperature", "heat_power", "gas_flow",
    "gas_volume", "steam_flow", "steam_mass", "heat_energy", "air_flow", "air_pressure",
    "water_volume", "production_count", "running_hours", "loaded_hours", "state",
)
MAX_REGISTERS = 2 * len(QUANTITIES)
HOST = "127.0.0.1"


@dataclass(frozen=True)
class SimMeter:
    index: int  # 0-based over all meters
    server: int  # which server (bus) it sits behind
    unit: int  # Modbus unit id on that server

    @property
    def id(self) -> str:
        return f"bench-{self.index:04d}"


def layout(devices: int, per_server: int) -> list[SimMeter]:
    """Meters in order: server 0 units 1…per_server, then server 1, …"""
    return [SimMeter(i, i // per_server, i % per_server + 1) for i in range(devices)]


def servers_for(devices: int, per_server: int) -> int:
    return math.ceil(devices / per_server)


def point_value(meter: int, point: int) -> float:
    """The float32 value of ``point`` on ``meter``, as the gateway must decode it.

    Exactly representable (an integer plus a quarter, below 2^20), so the check can demand
    equality rather than a tolerance; unique per (meter, point)."""
    value = 1000.0 * (point + 1) + meter + 0.25
    return struct.unpack(">f", struct.pack(">f", value))[0]


def point_words(meter: int, points: int) -> list[int]:
    """The holding registers 0… of one meter: big-endian words of big-endian float32s."""
    words: list[int] = []
    for j in range(points):
        hi, lo = struct.unpack(">HH", struct.pack(">f", point_value(meter, j)))
        words += [hi, lo]
    return words


def yaml_points(points: int) -> list[dict[str, Any]]:
    """The same layout as gateway config points (canonical units, so no conversion)."""
    return [{"quantity": QUANTITIES[j], "address": 2 * j, "datatype": "float32"}
            for j in range(points)]


# ---------------------------------------------------------------------------------------------
# the server process


async def _serve(devices: int, per_server: int, points: int) -> None:
    # Imported here: the parent process never needs pymodbus's server side.
    from pymodbus.server import ModbusTcpServer

    from simulators.modbus_server import build_devices

    meters = layout(devices, per_server)
    counts = [0] * servers_for(devices, per_server)

    def counter(server: int) -> Callable[[bool, Any], Any]:
        def trace(sending: bool, pdu: Any) -> Any:
            if not sending:
                counts[server] += 1
            return pdu
        return trace

    servers = []
    for s in range(len(counts)):
        image = {m.unit: {"holding": {0: point_words(m.index, points)}}
                 for m in meters if m.server == s}
        # build_devices adds the simulator's unit-0 catch-all, so a wrong unit id gets the
        # gateway-path exception 0x0B a real TCP gateway sends, not a silent timeout.
        server = ModbusTcpServer(build_devices(image), address=(HOST, 0), trace_pdu=counter(s))
        await server.serve_forever(background=True)
        servers.append(server)
    ports = [srv.transport.sockets[0].getsockname()[1] for srv in servers]
    print(json.dumps({"ports": ports}), flush=True)

    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command = line.strip()
            if command == "stats":
                print(json.dumps({"requests": counts}), flush=True)
            elif not line or command == "quit":  # "" is end of input: the parent is gone
                break
    finally:
        for srv in servers:
            await srv.shutdown()


class SimServers:
    """The parent's handle on a server process: ports, request counts, shutdown."""

    def __init__(self, devices: int, per_server: int, registers: int) -> None:
        if registers % 2 or not 2 <= registers <= MAX_REGISTERS:
            raise ValueError(f"--registers must be even and 2…{MAX_REGISTERS} (float32 points)")
        self.devices = devices
        self.per_server = per_server
        self.points = registers // 2
        self.meters = layout(devices, per_server)
        root = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.modbus_sim", "--devices", str(devices),
             "--per-server", str(per_server), "--registers", str(registers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
        )
        try:
            self.ports: list[int] = self._answer()["ports"]
        except BaseException:
            self.close()
            raise

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator process ended (exit {self.proc.wait()})")
        return json.loads(line)

    def port_of(self, meter: SimMeter) -> int:
        return self.ports[meter.server]

    def requests(self) -> list[int]:
        """Requests each server has received so far."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return list(self._answer()["requests"])

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> SimServers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.modbus_sim",
                                description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--per-server", type=int, default=20)
    p.add_argument("--registers", type=int, default=20)
    args = p.parse_args(argv)
    if args.registers % 2 or not 2 <= args.registers <= MAX_REGISTERS:
        p.error(f"--registers must be even and 2…{MAX_REGISTERS}")
    if not 1 <= args.per_server <= 247:
        p.error("--per-server must be 1…247 (Modbus unit ids)")
    asyncio.run(_serve(args.devices, args.per_server, args.registers // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
