"""Modbus RTU for real: the simulator on one end of a pty pair, the gateway collector on the other;
and RTU frames over a TCP socket."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from simulators.rtu_server import start_rtu_over_tcp_server, start_rtu_server
from tests.gateway.modbus_fixtures import Running, config_devices, mismatches, noon_model, pty_pair

METERS = [  # (device id, unit, profile) as the simulator serves them
    ("grid-incomer", 1, "eastron-sdm630"),
    ("compressor-1", 3, "generic-screw-compressor"),
    ("boiler", 5, "generic-gas-boiler"),
    ("heat-recovery", 6, "tuf2000m-heat"),
]


def _rtu(serial_port: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": d, "unit": u, "profile": p, "protocol": "modbus-rtu", "poll": "200ms",
             "timeout": "500ms", "serial": {"port": serial_port, "baudrate": 19200}, **extra}
            for d, u, p in METERS]


def test_several_units_over_one_serial_connection(tmp_path: Path) -> None:
    model = noon_model()
    with pty_pair(tmp_path) as (sim_end, gateway_end):
        devices = config_devices(_rtu(gateway_end))

        async def scenario() -> None:
            server = await start_rtu_server(sim_end, model, baudrate=19200)
            run = Running(devices)
            try:
                assert len(run.buses) == 1, "all units on one serial port are one bus"
                await run.wait_for(lambda: all(run.got.cycles(d.id) >= 2 for d in devices))
                bad = mismatches(devices, run.got, model.truth())
                assert not bad, f"decoded values differ from the simulator: {bad}"
                # one connection, opened once, served every unit in turn
                assert run.buses[0].connects == 1
                assert all(s.failures == 0 for s in run.buses[0].devices)
            finally:
                await run.stop()
                await server.stop()

        asyncio.run(scenario())


def test_rtu_over_tcp(tmp_path: Path) -> None:
    model = noon_model()

    async def scenario() -> None:
        server, port = await start_rtu_over_tcp_server("127.0.0.1", 0, model)
        devices = config_devices([
            {"id": d, "unit": u, "profile": p, "protocol": "modbus-rtu-over-tcp",
             "host": "127.0.0.1", "port": port, "poll": "200ms", "timeout": "500ms"}
            for d, u, p in METERS
        ])
        run = Running(devices)
        try:
            assert len(run.buses) == 1
            await run.wait_for(lambda: all(run.got.cycles(d.id) >= 2 for d in devices))
            bad = mismatches(devices, run.got, model.truth())
            assert not bad, f"decoded values differ from the simulator: {bad}"
        finally:
            await run.stop()
            await server.stop()

    asyncio.run(scenario())


def test_silent_unit_does_not_starve_live_units_on_the_same_line(tmp_path: Path) -> None:
    """On RS-485 an absent unit simply never answers: every attempt costs a full timeout on the
    shared line. Backoff keeps those attempts rare, so live units keep their poll rate."""
    model = noon_model()
    with pty_pair(tmp_path) as (sim_end, gateway_end):
        devices = config_devices([*_rtu(gateway_end)[:2], {
            "id": "absent", "unit": 42, "protocol": "modbus-rtu", "poll": "200ms",
            "timeout": "400ms", "serial": {"port": gateway_end, "baudrate": 19200},
            # two blocks: an attempt must stop at the first timeout, not try the second
            "points": [{"quantity": "voltage", "table": "input", "address": 0, "datatype": "float32"},
                       {"quantity": "state", "table": "holding", "address": 1}],
        }])

        async def scenario() -> None:
            server = await start_rtu_server(sim_end, model, baudrate=19200)
            run = Running(devices)
            try:
                dead = run.state("absent")
                await run.wait_for(lambda: dead.failures >= 3)
                first_backoff = dead.backoff_s
                start = time.monotonic()
                await asyncio.sleep(3.0)
                window = time.monotonic() - start
                expected = window / 0.2
                for live in ("grid-incomer", "compressor-1"):
                    cycles = run.got.cycles(live, since=start)
                    # generous: a timeout of the dead unit may delay one or two cycles
                    assert cycles >= 0.5 * expected, (live, cycles, expected)
                    assert run.state(live).failures == 0
                assert dead.failures >= 4
                assert dead.backoff_s > first_backoff  # exponential backoff grows
                assert "no reply" in (dead.last_error or "")
                # the plan reads holding before input: the attempt ended at the first block
                assert "holding" in (dead.last_error or "")
                assert "input" not in (dead.last_error or "")
                assert run.got.cycles("absent") == 0
            finally:
                await run.stop()
                await server.stop()

        asyncio.run(scenario())
