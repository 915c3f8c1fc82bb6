"""Helpers for the Modbus collector tests: real ptys (socat), real sockets, in-process buses."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.collectors.modbus import Bus, group_by_bus, run_bus
from gateway.config import Device
from lingtan.kernel.reading import Reading
from simulators.site import SiteModel

# 12:00 in Shenyang on midsummer day: every simulated meter has a non-trivial value.
NOON = datetime(2026, 6, 20, 4, 0, tzinfo=UTC)


def noon_model() -> SiteModel:
    model = SiteModel(seed=7, start=NOON - timedelta(minutes=10))
    model.advance_to(NOON)
    return model


def device(**fields: Any) -> Device:
    base: dict[str, Any] = {"protocol": "modbus-tcp", "host": "127.0.0.1", "poll": 0.2,
                            "timeout": 0.5}
    return Device.model_validate({**base, **fields})


@contextmanager
def pty_pair(folder: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals: what one end writes, the other reads, like a null-modem."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (scripts/install-test-deps.sh installs it)")
    a, b = folder / "a", folder / "b"
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (a.exists() and b.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.02)
        yield str(a), str(b)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Collected:
    """Readings emitted by the buses, with the monotonic time each batch arrived."""

    batches: list[tuple[float, list[Reading]]] = field(default_factory=list)

    def emit(self, readings: list[Reading]) -> None:
        self.batches.append((time.monotonic(), list(readings)))

    def cycles(self, device_id: str, since: float = 0.0) -> int:
        return sum(1 for t, rs in self.batches if t >= since and rs and rs[0].meter_id == device_id)

    def latest(self, device_id: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for _, readings in self.batches:
            for r in readings:
                if r.meter_id == device_id:
                    out[r.quantity] = r.value
        return out


class Running:
    """Buses polled by run_bus tasks on the current event loop until stopped."""

    def __init__(self, devices: list[Device]) -> None:
        self.buses: list[Bus] = group_by_bus(devices)
        self.got = Collected()
        self.stop_event = asyncio.Event()
        self.tasks = [asyncio.create_task(run_bus(b, self.got.emit, self.stop_event))
                      for b in self.buses]

    def state(self, device_id: str):  # type: ignore[no-untyped-def]
        for bus in self.buses:
            for s in bus.devices:
                if s.device.id == device_id:
                    return s
        raise KeyError(device_id)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met within the generous wait")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout=15)


def config_devices(devices: list[dict[str, Any]]) -> list[Device]:
    """Devices as the gateway would load them from YAML (profiles expanded)."""
    import yaml

    from gateway.config import parse_config

    text = yaml.safe_dump({"gateway": {"id": "test-gw", "site": "test-site"}, "devices": devices})
    return parse_config(text, "test config").devices


def tolerance(point: Any) -> float:
    """Half a step of the register's resolution (float points: relative precision only)."""
    from lingtan.kernel.quantities import conversion

    if point.datatype.startswith("float"):
        return 0.0
    factor = conversion(point.unit, point.quantity)[0]
    return abs(point.scale * factor) / 2 + 1e-9


def mismatches(devices: list[Device], got: Collected, truth: dict[tuple[str, str], float]
               ) -> dict[str, tuple[float | None, float]]:
    """Points whose latest reading differs from the simulator's truth: {dev/qty: (got, want)}."""
    out: dict[str, tuple[float | None, float]] = {}
    for d in devices:
        latest = got.latest(d.id)
        for p in d.points:
            if (d.id, p.quantity) not in truth:
                continue
            want = truth[(d.id, p.quantity)]
            have = latest.get(p.quantity)
            if have is None or have != pytest.approx(want, rel=1e-6, abs=tolerance(p)):
                out[f"{d.id}/{p.quantity}"] = (have, want)
    return out


class ServerThread:
    """A Modbus server on its own event loop thread, so blocking code (a CLI subprocess, a
    collector in another loop) can talk to it."""

    def __init__(self, devices: list[Any]) -> None:
        import threading

        from pymodbus.server import ModbusTcpServer

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> Any:
            server = ModbusTcpServer(devices, address=("127.0.0.1", 0))
            await server.serve_forever(background=True)
            return server

        self.server = self._call(start())
        self.port: int = self.server.transport.sockets[0].getsockname()[1]

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def stop(self) -> None:
        self._call(self.server.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def run_cli(*args: str, timeout: float = 60) -> Any:
    """`python -m lingtan.cli ...` as a field engineer would run it."""
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def decoded_value(output: str, datatype: str) -> float:
    """The value on the probe's `<datatype> (word order …, byte order …): <value>` line."""
    for line in output.splitlines():
        if line.startswith(f"{datatype} (word order"):
            return float(line.rsplit(":", 1)[1])
    raise AssertionError(f"no decoded {datatype} line in:\n{output}")
