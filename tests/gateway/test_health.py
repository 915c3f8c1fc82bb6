"""Health: the registry's arithmetic, and /metrics scraped over HTTP from a running gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from gateway.config import parse_config
from gateway.health import HealthRegistry, HeartbeatWriter, RateWindow, percentile
from gateway.metrics import HealthCollector, NotAnswering, parse_metrics, status_text
from gateway.runtime import Gateway
from lingtan.kernel.db import libpq_url
from simulators.site import SiteModel
from tests.conftest import free_port
from tests.e2e.test_pipeline import NOON, PlantServer

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    samples = [float(i) for i in range(100, 0, -1)]  # unordered on purpose
    assert percentile(samples, 0.5) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([0.3], 0.99) == 0.3


def test_rate_window_counts_the_last_minute_and_is_fair_while_young():
    rate = RateWindow(since=0.0, window=60)
    for i in range(20):  # 2 reads a second for 10 s
        rate.add(i * 0.5)
    assert rate.rate(10.0) == pytest.approx(2.0)  # divided by 10 s of life, not by the window
    assert rate.rate(65.0) == pytest.approx(5 * 2 / 60, abs=0.05)  # only seconds 5…9 are left
    assert rate.rate(200.0) == 0.0


def test_registry_tracks_successes_failures_latency_and_sources():
    clock = FakeClock()
    health = HealthRegistry(["m1", "m2"], gateway_id="gw", site_id="s", heartbeat_s=10,
                            clock=clock, wall=clock)
    assert [d.state for d in health.devices()] == ["waiting", "waiting"]
    for i in range(1, 11):
        clock.t += 1
        health.poll_ok("m1", i / 100, 4)
    health.poll_failed("m2", "m2: no reply")
    health.poll_failed("m2", "m2: no reply again " + "x" * 1000)
    m1, m2 = health.devices()
    assert (m1.up, m1.state, m1.consecutive_failures, m1.readings_total) == (True, "ok", 0, 40)
    assert m1.last_success == clock.t
    assert m1.latency_last_s == 0.10 and m1.latency_p50_s == 0.05 and m1.latency_p99_s == 0.10
    assert m1.latency_count == 10 and m1.latency_sum_s == pytest.approx(0.55)
    assert m1.reads_per_second == pytest.approx(1.0)
    assert (m2.up, m2.state, m2.consecutive_failures, m2.failures_total) == (False, "failing", 2, 2)
    assert m2.last_error is not None and len(m2.last_error) == 300
    health.poll_ok("m2", 0.2, 1)  # back: the streak and the error clear
    assert health.devices()[1].consecutive_failures == 0 and health.devices()[1].last_error is None

    health.message_ok("line-7", 2)  # an MQTT meter first heard of when it reports
    health.message_bad("line-7", "not JSON")
    health.message_bad(None, "no mapping")

    def closed() -> int:
        raise RuntimeError("buffer closed")

    health.bind(pending=lambda: 5, dropped=lambda: 2, dead_letters=closed, written=lambda: 40)
    snap = health.snapshot()
    line = next(d for d in snap.devices if d.device == "line-7")
    assert (line.up, line.readings_total, line.consecutive_failures) == (False, 2, 1)
    figures = (snap.buffer_pending, snap.buffer_dropped, snap.dead_letters, snap.sink_written)
    assert figures == (5, 2, None, 40)
    assert snap.bad_messages == 2
    assert snap.as_dict()["devices"][0]["device"] == "line-7"


def test_exposition_names_and_round_trip():
    from prometheus_client import CollectorRegistry, generate_latest

    health = HealthRegistry(["a", "b"], gateway_id="gw", site_id="s")
    health.poll_ok("a", 0.012, 3)
    health.poll_failed("b", 'b: "quoted" \\ error')
    health.bind(pending=lambda: 7, dropped=lambda: 1, dead_letters=lambda: 0, written=lambda: 3)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(health))
    text = generate_latest(registry).decode()
    for line in ('lingtan_device_up{device="a"} 1.0', 'lingtan_device_up{device="b"} 0.0',
                 'lingtan_device_consecutive_failures{device="b"} 1.0',
                 'lingtan_device_poll_latency_seconds{device="a",quantile="0.5"} 0.012',
                 'lingtan_device_poll_latency_seconds_count{device="a"} 1.0',
                 "lingtan_buffer_pending_readings 7.0", "lingtan_buffer_dropped_readings_total 1.0",
                 "lingtan_dead_letters_total 0.0", "lingtan_sink_written_readings_total 3.0"):
        assert line in text, line
    assert "# TYPE lingtan_device_poll_latency_seconds summary" in text
    assert 'lingtan_device_last_success_timestamp_seconds{device="a"}' in text
    rows, overall = parse_metrics(text)
    assert [(r.device, r.up, r.consecutive_failures) for r in rows] == [("a", True, 0), ("b", False, 1)]
    assert rows[1].last_error == 'b: "quoted" \\ error'  # label escaping survives the round trip
    assert overall["lingtan_buffer_pending_readings"] == 7


# --- a running gateway against the simulated plant ---


@pytest.fixture
def plant() -> Iterator[PlantServer]:
    model = SiteModel(seed=7, start=NOON - timedelta(minutes=10))
    model.advance_to(NOON)
    server = PlantServer(model)
    server.publish()
    yield server
    server.stop()


def gateway_yaml(tmp_path: Path, plant_port: int, listen_port: int, gateway_id: str) -> Path:
    def meter(device_id: str, port: int, unit: int, profile: str) -> dict:
        return {"id": device_id, "protocol": "modbus-tcp", "host": "127.0.0.1", "port": port,
                "unit": unit, "poll": "200ms", "timeout": "300ms", "profile": profile}

    raw = {
        "gateway": {"id": gateway_id, "site": "health-site"},
        "buffer": {"path": str(tmp_path / "buffer.db")},
        "health": {"listen": f"127.0.0.1:{listen_port}", "heartbeat": "1s"},
        "devices": [
            meter("grid-incomer", plant_port, 1, "eastron-sdm630"),
            meter("compressor-1", plant_port, 3, "generic-screw-compressor"),
            meter("dead-meter", free_port(), 1, "eastron-sdm630"),  # nothing listens there
        ],
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.status == 200
        return reply.read().decode()


def wait_for(predicate, seconds: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture
def running(db, plant, tmp_path: Path) -> Iterator[tuple[Gateway, Path, int]]:
    port = free_port()
    config = gateway_yaml(tmp_path, plant.handle.port, port, "health-gw")
    cfg = parse_config(config.read_text())
    with psycopg.connect(libpq_url(db), autocommit=True) as conn:  # an earlier test's last beat
        conn.execute("DELETE FROM gateway_heartbeats WHERE gateway_id = 'health-gw'")
    gateway = Gateway(cfg, db)
    gateway.start()
    try:
        yield gateway, config, port
    finally:
        gateway.stop()


def test_metrics_over_http_show_live_devices_up_and_a_dead_one_failing(running):
    gateway, _, port = running
    assert gateway.monitor.port == port

    def devices() -> dict:
        return {r.device: r for r in parse_metrics(scrape(port))[0]}

    first = wait_for(lambda: (d := devices()) and d["grid-incomer"].up and d["compressor-1"].up
                     and d["dead-meter"].consecutive_failures >= 2 and d)
    assert first, scrape(port)
    assert not first["dead-meter"].up and first["dead-meter"].last_success is None
    assert "cannot connect to modbus-tcp://127.0.0.1:" in (first["dead-meter"].last_error or "")
    later = wait_for(lambda: (d := devices())["dead-meter"].consecutive_failures
                     > first["dead-meter"].consecutive_failures and d)
    assert later, "the dead meter's failures stopped growing"
    assert later["grid-incomer"].up and later["compressor-1"].up  # the dead one costs them nothing
    assert later["grid-incomer"].polls_total > first["grid-incomer"].polls_total
    assert later["grid-incomer"].reads_per_second > 1.0  # polled every 200 ms
    assert 0 < (later["grid-incomer"].latency_p50_s or 0) < 0.3
    text = scrape(port)
    assert 'lingtan_device_up{device="grid-incomer"} 1.0' in text
    assert 'lingtan_device_up{device="dead-meter"} 0.0' in text
    assert wait_for(lambda: "lingtan_sink_written_readings_total 0.0" not in scrape(port))
    for name in ("lingtan_buffer_pending_readings", "lingtan_buffer_dropped_readings_total",
                 "lingtan_dead_letters_total", "lingtan_device_reads_per_second"):
        assert name in text
    assert "lingtan_broker_" not in text  # Modbus into PostgreSQL: no broker, nothing to show


def test_gateway_writes_its_heartbeat(running, db):
    gateway, _, _ = running

    def row():  # type: ignore[no-untyped-def]
        with psycopg.connect(libpq_url(db)) as conn:
            return conn.execute("SELECT site_id, status FROM gateway_heartbeats"
                                " WHERE gateway_id = 'health-gw'").fetchone()

    beat = wait_for(lambda: (r := row()) and any(d["up"] for d in r[1]["devices"]) and r)
    assert beat, row()
    site, status = beat
    assert site == "health-site" and status["heartbeat_s"] == 1.0 and status["running"] is True
    assert {d["device"] for d in status["devices"]} == {"grid-incomer", "compressor-1", "dead-meter"}
    gateway.stop()  # a clean stop says so at once
    gateway.stop = lambda *a, **k: None  # type: ignore[method-assign]  # the fixture's stop
    assert row()[1]["running"] is False


def lingtan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_status_command_against_the_running_gateway(running, db):
    _, config, _ = running
    assert wait_for(lambda: "ok" in status_text("health-gw", running[0].cfg.health.listen)
                    .split("compressor-1")[1].split("\n")[0])
    out = lingtan("gateway", "status", "--config", str(config))
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert lines["grid-incomer"].split()[1] == "ok"
    assert lines["dead-meter"].split()[1] == "failing"
    assert "never" in lines["dead-meter"] and "cannot connect" in lines["dead-meter"]
    assert "buffer pending" in out.stdout
    assert "broker" not in out.stdout  # no MQTT anywhere: no broker line

    env = {**os.environ, "LINGTAN_DATABASE_URL": db}
    wait_for(lambda: "ok" in lingtan("gateway", "status", "--config", str(config), "--from-db",
                                     env=env).stdout)
    out = lingtan("gateway", "status", "--config", str(config), "--from-db", env=env)
    assert out.returncode == 0, out.stderr
    assert "gateway health-gw: heartbeat" in out.stdout and "(online)" in out.stdout
    assert "grid-incomer" in out.stdout and "dead-meter" in out.stdout


def test_status_command_says_when_no_gateway_answers(tmp_path: Path):
    port = free_port()
    config = gateway_yaml(tmp_path, free_port(), port, "idle-gw")
    out = lingtan("gateway", "status", "--config", str(config))
    assert out.returncode == 1
    assert (f"no gateway answering on 127.0.0.1:{port} — is `lingtan gateway run` running?"
            in out.stderr)
    assert "Traceback" not in out.stderr
    with pytest.raises(NotAnswering, match="--from-db"):
        status_text("gw", None)


def test_heartbeat_failures_are_logged_not_raised(caplog):
    health = HealthRegistry(["m"], gateway_id="gw", site_id="s")
    writer = HeartbeatWriter(f"postgresql://nobody@127.0.0.1:{free_port()}/none", health, 0.2)
    assert writer.beat() is False
    writer.start()
    time.sleep(0.5)
    writer.stop()  # returns although every write failed
    assert "heartbeat write failed; will retry" in caplog.text


def test_mqtt_messages_report_per_meter_health(mqtt_broker):
    import json
    import uuid

    from gateway.collectors.mqtt import MqttCollector
    from lingtan.kernel.mqtt import make_client

    url, protocol = mqtt_broker
    prefix = f"health-{uuid.uuid4().hex[:8]}"
    cfg = parse_config(f"""
gateway: {{id: gw, site: s}}
devices:
  - id: meters
    protocol: mqtt
    topic: {prefix}/+/telemetry
    device_id_from_topic: 1
    points:
      - {{quantity: active_power, path: $.kw, unit: kW}}
""")
    health = HealthRegistry(gateway_id="gw", site_id="s")
    collector = MqttCollector(cfg.devices, url, protocol, f"t-{uuid.uuid4().hex[:6]}",
                              lambda readings: None, health=health)
    collector.start()
    publisher, address = make_client(url, protocol)
    publisher.connect(address.host, address.port)
    publisher.loop_start()
    try:
        assert collector.subscribed.wait(10)
        for meter, payload in (("m1", json.dumps({"kw": 1})), ("m2", json.dumps({"kw": 2})),
                               ("m2", "{broken")):
            publisher.publish(f"{prefix}/{meter}/telemetry", payload, qos=1).wait_for_publish(5)
        assert wait_for(lambda: health.snapshot().bad_messages == 1, 10)
        devices = {d.device: d for d in wait_for(lambda: len(health.devices()) == 3 and health.devices())}
        assert devices["m1"].up and devices["m1"].readings_total == 1
        assert devices["m2"].readings_total == 1  # the good one counted before the bad one
        assert "not JSON" in (devices["meters"].last_error or "")  # a bad payload names its mapping
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        collector.stop()
