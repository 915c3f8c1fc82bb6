"""`run_simulators` as a real process: serve, stop on a signal, save, resume, catch up."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import ModbusTcpClient

from lingtan.kernel.mqtt import parse_mqtt_url
from simulators import statefile
from simulators.mqtt_publisher import LINE_TOPIC, PROTOCOLS
from simulators.runner import run_simulators
from simulators.site import SiteModel
from tests.conftest import free_port
from tests.simulators.decode import f32

SCRIPT = """
import sys
from pathlib import Path
from lingtan.kernel import logs
from simulators.runner import run_simulators
logs.configure("INFO", "text")
port, state, speed, url, protocol = sys.argv[1:]
run_simulators(site_file=None, host="127.0.0.1", modbus_port=int(port), mqtt_url=url or None,
               mqtt_protocol=protocol, seed=5, speed=float(speed), state_file=Path(state))
"""


@contextmanager
def simulator(port: int, state: Path, speed: float = 1.0, mqtt_url: str = "",
              protocol: str = "5") -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(port), str(state), str(speed), mqtt_url, protocol],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_listening(proc, port)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_listening(proc: subprocess.Popen[str], port: int) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"simulator exited early: {proc.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("simulator never listened")


def _total_kwh(port: int) -> float:
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
    assert c.connect()
    try:
        r = c.read_input_registers(0x156, count=2, device_id=1)
        assert not r.isError(), r
        return f32(r.registers)
    finally:
        c.close()


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=15)
    return proc.returncode, err


def _saved_total(state: Path) -> float:
    t = statefile.load(state).truth()
    return t[("grid-incomer", "active_energy_import")] + t[("grid-incomer", "active_energy_export")]


def test_serve_stop_save_and_resume(tmp_path: Path, mqtt_broker: tuple[str, str]) -> None:
    url, protocol = mqtt_broker
    state = tmp_path / "sim-state.json"
    port = free_port()
    telemetry = _subscribe(url, protocol)
    with simulator(port, state, speed=60.0, mqtt_url=url, protocol=protocol) as proc:
        first = _total_kwh(port)
        assert telemetry.wait(), "the runner publishes line telemetry at start"
        rc, err = _stop(proc, signal.SIGINT)
    telemetry.close()
    assert rc == 0, err
    assert f"Modbus TCP on 127.0.0.1:{port}" in err
    assert "demo-plant/line-1/telemetry" in err
    assert "Traceback" not in err
    saved = _saved_total(state)
    assert saved >= first - 0.125  # float32 step at ~1.2 GWh
    assert [p.name for p in tmp_path.iterdir()] == ["sim-state.json"]  # no temp file left

    with simulator(port, state) as proc:
        resumed = _total_kwh(port)
        rc, err = _stop(proc, signal.SIGTERM)
    assert rc == 0, err
    assert "resuming simulator state" in err
    assert resumed >= saved - 0.125, "counters continue across a restart"
    assert resumed < saved + 50


def test_resume_catches_up_over_a_long_gap(tmp_path: Path) -> None:
    state = tmp_path / "old.json"
    old = SiteModel(5, datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    statefile.save(old, state)
    before = _saved_total(state)
    port = free_port()
    with simulator(port, state) as proc:
        served = _total_kwh(port)
        rc, err = _stop(proc, signal.SIGINT)
    assert rc == 0, err
    assert "catching up" in err
    caught_up = statefile.load(state)
    assert caught_up.now >= old.now + timedelta(days=2) - timedelta(minutes=5)
    # Two days of a factory that never drops below ~60 kW.
    assert served - before > 2 * 24 * 50


def test_port_in_use_exits_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(port), str(tmp_path / "s.json"), "1", "", "5"],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode != 0
    assert f"port {port}" in proc.stderr
    assert "LINGTAN_SIM_MODBUS_PORT" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"site_file": Path("plant.yaml")}, "custom site files are not supported"),
    ({"speed": 0.0}, "speed must be positive"),
    ({"mqtt_url": "tcp://x"}, "mqtt://"),
])
def test_bad_settings_exit_with_a_message(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "site_file": None, "host": "127.0.0.1", "modbus_port": free_port(), "mqtt_url": None,
        "mqtt_protocol": "5", "seed": 1, "speed": 1.0, "state_file": None,
    }
    args.update(kwargs)
    with pytest.raises(SystemExit, match=message):
        run_simulators(**args)  # type: ignore[arg-type]


def test_unreadable_state_file_exits_with_a_message(tmp_path: Path) -> None:
    state = tmp_path / "broken.json"
    state.write_text(json.dumps({"site": "demo-plant", "version": 1}))
    with pytest.raises(SystemExit, match="delete it to start afresh"):
        run_simulators(site_file=None, host="127.0.0.1", modbus_port=free_port(), mqtt_url=None,
                       mqtt_protocol="5", seed=1, speed=1.0, state_file=state)


@dataclass
class _Subscription:
    client: mqtt.Client
    got: threading.Event

    def wait(self) -> bool:
        return self.got.wait(15)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _subscribe(url: str, protocol: str) -> _Subscription:
    addr = parse_mqtt_url(url)
    subscribed, got = threading.Event(), threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        payload = json.loads(msg.payload)
        if {"ts", "count", "rate_per_min", "state", "power_kw"} <= set(payload):
            got.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=PROTOCOLS[protocol])
    client.on_connect = lambda c, *_: c.subscribe(LINE_TOPIC, qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    client.connect(addr.host, addr.port)
    client.loop_start()
    assert subscribed.wait(10)
    return _Subscription(client, got)
