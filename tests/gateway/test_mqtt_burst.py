"""A field burst into `lingtan gateway run` through a Mosquitto with its default settings
(20 messages in flight and 1,000 queued per client, dropped beyond): 50 Tasmota-style devices
replay their backlog at QoS 1, 40,000 messages of two readings each, at 4,000 messages/s — the
top of what one publishing client reached on the reference machine when the loss was found.

That rate is a fifth of what a bare subscriber takes from a backlog on the reference machine
(20,616/s, benchmarks/README.md), where the gateway before group commit lost messages at it. On
a slower machine the burst keeps that share, measured in the same session: a fixed 4,000/s
would test the machine's speed (the gateway's share of it is the benchmark's), not whether the
intake loses what it can keep up with.

Every reading must be stored, none twice; and a gateway SIGKILLed in the middle of the burst
must, after its restart, hold everything the broker had handed it exactly once: it acknowledges
a message only once its readings are in the disk buffer, and its persistent session keeps the
rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from benchmarks.mqtt_intake import appended, bare_backlog, gateway_config, publish_burst, topics
from lingtan.kernel.db import libpq_url
from tests.gateway.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 50
RATE = 4000.0
BARE_SHARE = 0.2  # 4,000/s of the reference machine's 20,616/s bare backlog rate


@pytest.fixture(scope="module")
def rate(tmp_path_factory: pytest.TempPathFactory) -> float:
    """RATE, or BARE_SHARE of what a bare subscriber takes from a backlog on this machine, if less."""
    calibration = Mosquitto(tmp_path_factory.mktemp("calibration"))  # a queue limit of 100,000
    calibration.start()
    try:
        bare = bare_backlog(calibration.url, "calibration", topics("calibration", DEVICES), 20_000,
                            lambda _: None)
    finally:
        calibration.stop()
    assert bare.messages == 20_000, bare
    chosen = min(RATE, BARE_SHARE * bare.rate)
    print(f"burst at {chosen:,.0f} messages/s (bare subscriber here: {bare.rate:,.0f}/s)")
    return chosen


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto", defaults=True)
    b.start()
    yield b
    b.stop()


class GatewayProcess:
    def __init__(self, tmp: Path, db: str, broker: Mosquitto) -> None:
        self.buffer = tmp / "buffer.db"
        self.config = tmp / "gateway.yaml"
        self.names = topics("burst", DEVICES)
        self.config.write_text(gateway_config("burst", self.names, self.buffer))
        self.env = {**os.environ, "LINGTAN_DATABASE_URL": db, "LINGTAN_MQTT_URL": broker.url,
                    "LINGTAN_MQTT_PROTOCOL": "5", "LINGTAN_LOG_FORMAT": "text"}
        self.tmp = tmp
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        log = self.tmp / f"gateway-{self.starts}.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lingtan.cli", "gateway", "run", "-c", str(self.config)],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "mqtt subscribed" not in log.read_text(errors="replace"):
            assert self.proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def stored(db: str) -> tuple[int, int]:
    with psycopg.connect(libpq_url(db)) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (meter_id, quantity, time)) FROM readings").fetchone()
    return int(total), int(distinct)


def wait_stored(db: str, n: int, timeout: float = 120) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    got = stored(db)
    while got[0] < n and time.monotonic() < deadline:
        time.sleep(0.5)
        got = stored(db)
    return got


def test_a_40000_message_burst_is_stored_completely_at_the_brokers_default_limits(
        db: str, broker: Mosquitto, tmp_path: Path, rate: float) -> None:
    gateway = GatewayProcess(tmp_path, db, broker)
    gateway.start()
    try:
        # the publisher is a process of its own, as a meter fleet is: its pace is not the
        # test process's to disturb
        subprocess.run([sys.executable, "-m", "benchmarks.mqtt_intake", "--publish", "burst",
                        "--devices", str(DEVICES), "--messages", "40000", "--burst-rate", str(rate),
                        "--mqtt-url", broker.url], cwd=ROOT, check=True, timeout=120,
                       capture_output=True)
        assert wait_stored(db, 80_000) == (80_000, 80_000)
    finally:
        gateway.stop()
    assert "being dropped" not in broker.log()


def test_a_gateway_killed_mid_burst_keeps_what_it_acknowledged(db: str, broker: Mosquitto,
                                                               tmp_path: Path, rate: float) -> None:
    gateway = GatewayProcess(tmp_path, db, broker)
    gateway.start()
    down = threading.Event()  # the publisher waits while the gateway is dead, as a fault window
    done = threading.Event()

    def publish() -> None:
        publish_burst(broker.url, gateway.names, 20_000, lambda _: None, rate, paused=down.is_set)
        done.set()

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        deadline = time.monotonic() + 60
        while appended(gateway.buffer) < 12_000:  # well into the burst
            assert time.monotonic() < deadline
            time.sleep(0.01)
        down.set()
        gateway.kill()  # no goodbye: unacknowledged messages stay with the broker's session
        killed_at = appended(gateway.buffer)
        gateway.start()
        down.clear()
        assert done.wait(60)
        assert wait_stored(db, 40_000) == (40_000, 40_000)
        assert 0 < killed_at < 40_000  # it really died mid-burst
    finally:
        down.clear()
        publisher.join(60)
        gateway.stop()
