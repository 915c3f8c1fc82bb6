"""Fault tests: the gateway loses nothing and stores nothing twice when it is killed, when its
database stops, or when its broker stops.

Each test runs its own embedded PostgreSQL and its own Mosquitto on a free port (so the shared
services stay up), a gateway as a real process, the central rollup refresher as a real process
(`lingtan rollups`, as a deployment runs it beside the database; the gateway refreshes none),
and a meter publisher that records every reading it produced. Afterwards the database must hold
exactly those readings, and the rollups must have caught up on them within 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml

from gateway.buffer import DiskBuffer
from lingtan.cli.embedded import EmbeddedPostgres
from lingtan.kernel.db import libpq_url
from lingtan.kernel.migrate import upgrade
from tests.gateway.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
DEVICES = [f"meter-{i}" for i in range(5)]
MESSAGES_PER_DEVICE = 300
RATE_PER_SECOND = 150  # messages/s over all devices: about 10 s of traffic
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@dataclass
class Plant:
    tmp: Path
    pg: EmbeddedPostgres
    database_url: str
    broker: Mosquitto
    config: Path
    buffer: Path
    gateway: subprocess.Popen | None = None
    rollups: subprocess.Popen | None = None
    starts: int = 0
    log: Path = field(init=False)
    rollups_log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.tmp / "gateway.log"
        self.rollups_log = self.tmp / "rollups.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINGTAN_")}
        env.update({"LINGTAN_DATABASE_URL": self.database_url, "LINGTAN_MQTT_URL": self.broker.url,
                    "LINGTAN_MQTT_PROTOCOL": "5", "LINGTAN_LOG_LEVEL": "INFO"})
        return env

    def start_gateway(self) -> None:
        with self.log.open("ab") as log:
            self.gateway = subprocess.Popen(
                [sys.executable, "-m", "lingtan.cli", "gateway", "run", "--config", str(self.config)],
                cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.log_text().count('"mqtt connected"') > self.starts, 20,
                   "the gateway to connect", self.log_text)
        self.starts += 1
        time.sleep(0.5)  # the subscription is acknowledged just after the connection

    def start_rollups(self) -> None:
        with self.rollups_log.open("ab") as log:
            self.rollups = subprocess.Popen([sys.executable, "-m", "lingtan.cli", "rollups"], cwd=ROOT,
                                            env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: "rollup refresher started" in self.rollups_text(), 20,
                   "the rollup refresher to start", self.rollups_text)

    def stop_rollups(self) -> int | None:
        if self.rollups is None or self.rollups.poll() is not None:
            return None if self.rollups is None else self.rollups.returncode
        self.rollups.send_signal(signal.SIGTERM)
        try:
            return self.rollups.wait(30)
        except subprocess.TimeoutExpired:
            self.rollups.kill()
            self.rollups.wait()
            return None

    def rollups_text(self) -> str:
        return self.rollups_log.read_text(errors="replace") if self.rollups_log.exists() else ""

    def rollups_caught_up(self) -> bool:
        """No mark is left and every stored reading is counted once in every rollup level."""
        with psycopg.connect(libpq_url(self.database_url), connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM rollup_dirty), (SELECT count(*) FROM readings),"
                " (SELECT sum(count) FROM readings_1m), (SELECT sum(count) FROM readings_15m),"
                " (SELECT sum(count) FROM readings_1h), (SELECT sum(count) FROM readings_1d)"
            ).fetchone()
        assert row is not None
        return row[0] == 0 and row[1] > 0 and row[1] == row[2] == row[3] == row[4] == row[5]

    def kill_gateway(self) -> None:
        assert self.gateway is not None
        self.gateway.send_signal(signal.SIGKILL)
        self.gateway.wait(10)

    def stop_gateway(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGTERM)
            try:
                self.gateway.wait(30)
            except subprocess.TimeoutExpired:
                self.gateway.kill()
                self.gateway.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stored(self) -> set[tuple[str, datetime, float]]:
        with psycopg.connect(libpq_url(self.database_url), connect_timeout=3) as conn:
            rows = conn.execute(
                "SELECT meter_id, time, value FROM readings WHERE quantity = 'production_count'"
            ).fetchall()
        return {(r[0], r[1], r[2]) for r in rows}

    def duplicates(self) -> int:
        with psycopg.connect(libpq_url(self.database_url)) as conn:
            row = conn.execute("SELECT count(*) - count(DISTINCT (meter_id, quantity, time))"
                               " FROM readings").fetchone()
        assert row is not None
        return int(row[0])


def wait_until(check: Callable[[], bool], seconds: float, what: str,
               detail: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{detail()[-4000:]}")


class Meters:
    """Publishes numbered telemetry at QoS 1 and remembers every reading it produced."""

    def __init__(self, broker_url: str) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fault-meters",
                                  protocol=mqtt.MQTTv5)
        host, port = broker_url.removeprefix("mqtt://").split(":")
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.acked: set[int] = set()
        self.client.on_publish = lambda _c, _u, mid, *_: self.acked.add(mid)
        self.client.connect_async(host, int(port))
        self.client.loop_start()
        assert connected.wait(10), "the meter publisher could not reach the broker"
        self.produced: set[tuple[str, datetime, float]] = set()
        self.sent = 0
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def run(self, on_progress: Callable[[int], None]) -> None:
        total = MESSAGES_PER_DEVICE * len(DEVICES)
        for seq in range(MESSAGES_PER_DEVICE):
            for device in DEVICES:
                t = T0 + timedelta(seconds=seq)
                payload = {"ts": t.isoformat(), "count": seq}
                # paho queues QoS 1 messages while the broker is away and sends them on reconnect
                self.infos.append(self.client.publish(f"plant/{device}/telemetry",
                                                      json.dumps(payload), qos=1))
                self.produced.add((device, t, float(seq)))
                self.sent += 1
                on_progress(self.sent)
                time.sleep(1 / RATE_PER_SECOND)
        assert self.sent == total

    def wait_acknowledged(self, seconds: float) -> None:
        # Messages queued while the broker was away are sent after the reconnect; paho's
        # wait_for_publish refuses to wait on those, so count the broker's PUBACKs instead.
        mids = {info.mid for info in self.infos}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not mids <= self.acked:
            time.sleep(0.1)
        assert mids <= self.acked, f"broker never acknowledged {len(mids - self.acked)} messages"

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    pg = EmbeddedPostgres(tmp_path / "pgdata")
    server = pg.start()
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        conn.execute("CREATE DATABASE lingtan")
    database_url = server.replace("/postgres?", "/lingtan?")
    upgrade(database_url)
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    config = tmp_path / "gateway.yaml"
    buffer = tmp_path / "buffer.db"
    config.write_text(yaml.safe_dump({
        "gateway": {"id": "fault-gw", "site": "fault-plant"},
        "health": {"listen": None},
        "buffer": {"path": str(buffer)},
        "sinks": [{"type": "postgres"}],
        "devices": [{
            "id": "meters", "protocol": "mqtt", "topic": "plant/+/telemetry",
            "device_id_from_topic": 1, "timestamp": {"path": "$.ts"},
            "points": [{"quantity": "production_count", "path": "$.count", "unit": "units"}],
        }],
    }))
    p = Plant(tmp_path, pg, database_url, broker, config, buffer)
    try:
        p.start_rollups()
        yield p
    finally:
        p.stop_gateway()
        p.stop_rollups()
        broker.stop()
        pg.stop()


def run_with_fault(plant: Plant, fault: Callable[[], None]) -> Meters:
    """Publish all readings; a third of the way through, inject ``fault``."""
    plant.start_gateway()
    meters = Meters(plant.broker.url)
    total = MESSAGES_PER_DEVICE * len(DEVICES)
    fired = threading.Event()

    def progress(sent: int) -> None:
        if sent >= total // 3 and not fired.is_set():
            fired.set()
            threading.Thread(target=fault, daemon=True).start()

    try:
        meters.run(progress)
        meters.wait_acknowledged(60)
        wait_until(lambda: plant.stored() >= meters.produced, 90,
                   "every produced reading in PostgreSQL", plant.log_text)
    finally:
        meters.stop()
    return meters


def assert_exactly_once(plant: Plant, meters: Meters) -> None:
    stored = plant.stored()
    assert stored == meters.produced, (
        f"missing {len(meters.produced - stored)}, unexpected {len(stored - meters.produced)}")
    assert plant.duplicates() == 0
    # the central refresher catches up on whatever the fault did to the stream
    wait_until(plant.rollups_caught_up, 30, "the rollups to catch up",
               lambda: plant.rollups_text() + plant.log_text())
    plant.stop_gateway()
    assert plant.stop_rollups() == 0, plant.rollups_text()
    buffer = DiskBuffer(plant.buffer)
    try:
        assert buffer.counter("dropped") == 0
        assert buffer.pending() == 0
    finally:
        buffer.close()


def test_gateway_killed_with_sigkill_mid_stream(plant: Plant) -> None:
    def fault() -> None:
        plant.kill_gateway()
        time.sleep(1.0)
        plant.start_gateway()

    meters = run_with_fault(plant, fault)
    assert plant.starts == 2
    assert_exactly_once(plant, meters)


def test_postgresql_stopped_and_restarted_mid_stream(plant: Plant) -> None:
    def fault() -> None:
        plant.pg.stop()
        time.sleep(3.0)  # readings keep arriving and wait in the gateway's disk buffer
        plant.pg.start()

    meters = run_with_fault(plant, fault)
    assert "sink write failed" in plant.log_text()  # the outage really happened
    assert_exactly_once(plant, meters)


def test_mosquitto_stopped_and_restarted_mid_stream(plant: Plant) -> None:
    def fault() -> None:
        plant.broker.stop()
        time.sleep(2.0)
        plant.broker.start()

    meters = run_with_fault(plant, fault)
    assert_exactly_once(plant, meters)
