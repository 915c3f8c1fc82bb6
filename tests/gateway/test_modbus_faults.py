"""Fault behaviour over real sockets: dead devices, silent listeners, exception replies.

A fault must cost only the faulty device: live devices keep their rate, the dead one backs
off, and it recovers on its own when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from simulators.modbus_server import start_modbus_server
from tests.conftest import free_port
from tests.gateway.modbus_fixtures import Running, config_devices, mismatches, noon_model

POLL = 0.2


def _live(port: int) -> list[dict[str, Any]]:
    return [
        {"id": "grid-incomer", "unit": 1, "profile": "eastron-sdm630", "protocol": "modbus-tcp",
         "host": "127.0.0.1", "port": port, "poll": POLL, "timeout": 0.5},
        {"id": "compressor-1", "unit": 3, "profile": "generic-screw-compressor",
         "protocol": "modbus-tcp", "host": "127.0.0.1", "port": port, "poll": POLL, "timeout": 0.5},
    ]


def _one_point(device_id: str, port: int, unit: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": device_id, "unit": unit, "protocol": "modbus-tcp", "host": "127.0.0.1",
            "port": port, "poll": POLL, "timeout": 0.4,
            "points": [{"quantity": "voltage", "table": "input", "address": 0, "datatype": "float32"}],
            **extra}


async def _keeps_rate(run: Running, device_ids: list[str], seconds: float = 2.5) -> None:
    start = time.monotonic()
    await asyncio.sleep(seconds)
    expected = (time.monotonic() - start) / POLL
    for device_id in device_ids:
        cycles = run.got.cycles(device_id, since=start)
        assert cycles >= 0.5 * expected, (device_id, cycles, expected)
        assert run.state(device_id).failures == 0


def test_absent_unit_behind_the_tcp_gateway_costs_only_itself() -> None:
    """The simulator answers unit 42 with exception 0x0B, as a TCP/RS-485 gateway does."""
    model = noon_model()

    async def scenario() -> None:
        sim = await start_modbus_server("127.0.0.1", 0, model)
        devices = config_devices([*_live(sim.port), _one_point("absent-42", sim.port, unit=42)])
        run = Running(devices)
        try:
            assert len(run.buses) == 1  # same host:port → one connection
            dead = run.state("absent-42")
            await run.wait_for(lambda: dead.failures >= 3)
            backoff = dead.backoff_s
            await _keeps_rate(run, ["grid-incomer", "compressor-1"])
            assert dead.failures >= 4 and dead.backoff_s > backoff
            error = dead.last_error or ""
            assert "absent-42" in error and "unit 42" in error
            assert "0x0b" in error and "gateway target device failed to respond" in error
            assert "input FC04 0x0000+2 (voltage)" in error
            assert not mismatches(devices[:2], run.got, model.truth())
        finally:
            await run.stop()
            await sim.stop()

    asyncio.run(scenario())


def test_exception_reply_names_device_and_range_and_spares_other_points() -> None:
    model = noon_model()

    async def scenario() -> None:
        sim = await start_modbus_server("127.0.0.1", 0, model)
        cfg = _one_point("grid-partly-wrong", sim.port, max_gap=0)
        cfg["points"].append({"quantity": "frequency", "table": "input", "address": 0x200,
                              "datatype": "float32", "unit": "Hz"})
        devices = config_devices([cfg])
        run = Running(devices)
        try:
            state = run.state("grid-partly-wrong")
            await run.wait_for(lambda: run.got.cycles("grid-partly-wrong") >= 3)
            # the readable point keeps arriving, and the device is not in backoff for the other
            assert state.failures == 0
            assert set(run.got.latest("grid-partly-wrong")) == {"voltage"}
            assert run.got.latest("grid-partly-wrong")["voltage"] == \
                pytest.approx(model.truth()[("grid-incomer", "voltage")], rel=1e-6)
            error = state.last_error or ""
            assert "grid-partly-wrong" in error
            assert "Modbus exception 0x02 (illegal data address)" in error
            assert "input FC04 0x0200+2 (frequency)" in error
        finally:
            await run.stop()
            await sim.stop()

    asyncio.run(scenario())


async def _silent_listener() -> tuple[asyncio.Server, int]:
    """Accepts connections and reads requests, but never replies (a hung TCP gateway)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while await reader.read(1024):
                pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_dead_and_hung_endpoints_never_delay_other_buses_and_the_dead_one_recovers() -> None:
    model = noon_model()

    async def scenario() -> None:
        sim = await start_modbus_server("127.0.0.1", 0, model)
        hung, hung_port = await _silent_listener()
        dead_port = free_port()  # nothing listens here (yet)
        devices = config_devices([*_live(sim.port), _one_point("refused", dead_port),
                                  _one_point("hung", hung_port)])
        run = Running(devices)
        revived = None
        try:
            assert len(run.buses) == 3  # one task per endpoint
            refused, silent = run.state("refused"), run.state("hung")
            await run.wait_for(lambda: refused.failures >= 3 and silent.failures >= 3)
            backoffs = refused.backoff_s, silent.backoff_s
            await _keeps_rate(run, ["grid-incomer", "compressor-1"])
            assert refused.backoff_s > backoffs[0] and silent.backoff_s > backoffs[1]
            assert "cannot connect" in (refused.last_error or "")
            assert "no reply" in (silent.last_error or "")
            assert run.got.cycles("refused") == 0 and run.got.cycles("hung") == 0

            # the meter comes back on the same port: the gateway reconnects by itself
            revived = await start_modbus_server("127.0.0.1", dead_port, model)
            await run.wait_for(lambda: run.got.cycles("refused") >= 2, timeout=90)
            assert refused.failures == 0 and refused.last_error is None
            assert run.got.latest("refused")["voltage"] == \
                pytest.approx(model.truth()[("grid-incomer", "voltage")], rel=1e-6)
        finally:
            await run.stop()
            hung.close()
            if revived is not None:
                await revived.stop()
            await sim.stop()

    asyncio.run(scenario())
