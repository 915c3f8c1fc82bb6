"""`lingtan probe modbus` against the running simulator, as a subprocess, and its formatting."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from gateway.probe import ProbeRequest, format_result
from simulators.modbus_server import build_devices
from simulators.registers import device_images
from simulators.registers.encoding import f32_cdab
from tests.conftest import free_port
from tests.gateway.modbus_fixtures import ServerThread, decoded_value, noon_model, run_cli


@pytest.fixture(scope="module")
def plant() -> Iterator[tuple[ServerThread, dict]]:
    model = noon_model()
    server = ServerThread(build_devices(device_images(model)))
    yield server, model.truth()
    server.stop()


def test_probe_decodes_grid_power_like_the_simulator(plant) -> None:  # type: ignore[no-untyped-def]
    server, truth = plant
    r = run_cli("probe", "modbus", f"127.0.0.1:{server.port}", "--unit", "1", "--address", "0x34",
                "--count", "2", "--table", "input", "--datatype", "float32")
    assert r.returncode == 0, r.stderr
    watts = truth[("grid-incomer", "active_power")] * 1000.0
    assert decoded_value(r.stdout, "float32") == pytest.approx(watts, rel=1e-6)
    # raw registers in hex and decimal, and the four orders for the engineer to compare
    assert "0x0034 (   52)" in r.stdout and "0x0035 (   53)" in r.stdout
    for label in ("ABCD", "CDAB", "BADC", "DCBA"):
        assert label in r.stdout


def _one_line_error(r) -> str:  # type: ignore[no-untyped-def]
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_probe_errors_are_one_clear_line(plant) -> None:  # type: ignore[no-untyped-def]
    server, _ = plant
    line = _one_line_error(run_cli("probe", "modbus", f"127.0.0.1:{free_port()}", "--unit", "1"))
    assert "connection refused" in line

    line = _one_line_error(run_cli("probe", "modbus", f"127.0.0.1:{server.port}", "--unit", "1",
                                   "--address", "0x200", "--table", "input"))
    assert "Modbus exception 0x02 (illegal data address)" in line and "0x0200" in line

    line = _one_line_error(run_cli("probe", "modbus", f"127.0.0.1:{server.port}", "--unit", "42"))
    assert "0x0b (gateway target device failed to respond)" in line


def test_probe_timeout_is_one_clear_line() -> None:
    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        held: list[socket.socket] = []

        def accept() -> None:
            for _ in range(2):  # the reachability check, then the Modbus connection
                conn, _ = listener.accept()
                held.append(conn)

        threading.Thread(target=accept, daemon=True).start()
        r = run_cli("probe", "modbus", f"127.0.0.1:{port}", "--unit", "1", "--timeout", "0.5")
        for conn in held:
            conn.close()
    line = _one_line_error(r)
    assert "no reply" in line and "0.5s" in line


def test_every_order_is_shown_for_wide_types() -> None:
    regs = f32_cdab(230.5)  # a word-swapped meter
    out = format_result(ProbeRequest(1, 0, 2, "holding", "float32"), regs)
    cdab = next(line for line in out.splitlines() if line.strip().startswith("CDAB"))
    assert "float32=230.5 " in cdab
    out = format_result(ProbeRequest(1, 0, 1, "holding", "int16"), [0xFFFE])
    assert "uint16=65534  int16=-2" in out
    out = format_result(ProbeRequest(1, 0, 4, "input", "float64", "little"), [0, 0, 0, 0x4000])
    assert decoded_value(out, "float64") == 2.0
