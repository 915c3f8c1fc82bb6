"""Two `lingtan ingest` worker processes share the uplink stream; one is SIGKILLed mid-stream
and restarted with the same id. Afterwards the database holds exactly the readings published.

Why nothing is lost: a worker acks an MQTT message only after the readings are in its disk
buffer, and its broker session (fixed client id) keeps what it had not acked; the restarted
worker drains its old buffer file and receives its queued messages. Redelivered readings hit
the idempotent insert, so nothing is duplicated either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from gateway import uplink
from gateway.buffer import DiskBuffer
from lingtan.kernel.db import libpq_url
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.reading import Reading
from tests.gateway.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 21, tzinfo=UTC)


def start_worker(worker_id: str, tmp: Path, db: str, broker: Mosquitto, attempt: int) -> subprocess.Popen:
    env = {**os.environ, "LINGTAN_DATABASE_URL": db, "LINGTAN_MQTT_URL": broker.url,
           "LINGTAN_MQTT_PROTOCOL": "5", "LINGTAN_LOG_LEVEL": "DEBUG", "LINGTAN_LOG_FORMAT": "text"}
    log = open(tmp / f"{worker_id}-{attempt}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "lingtan.cli", "ingest", "--id", worker_id,
                             "--buffer", str(tmp / f"{worker_id}.db"), "--batch", "50"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_log(path: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path.name} never logged {text!r}:\n{path.read_text(errors='replace')}")


def batch(i: int) -> list[Reading]:
    return [Reading(T0 + timedelta(seconds=i, microseconds=j), f"gw-meter-{j}", "active_power",
                    float(i * 10 + j)) for j in range(10)]


def db_rows(db: str) -> list[tuple]:
    with psycopg.connect(libpq_url(db)) as conn:
        return conn.execute("SELECT meter_id, quantity, time, value FROM readings").fetchall()


def rollup_state(db: str) -> tuple[int, int]:
    """Marks left, and readings counted in the day rollups."""
    with psycopg.connect(libpq_url(db)) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM rollup_dirty),"
                           " (SELECT coalesce(sum(count), 0) FROM readings_1d)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_two_workers_share_the_stream_and_a_killed_worker_loses_nothing(db: str, tmp_path: Path):
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    workers = {w: start_worker(w, tmp_path, db, broker, 0) for w in ("ingest-a", "ingest-b")}
    pub, address = make_client(broker.url, "5")
    try:
        for w in workers:
            wait_log(tmp_path / f"{w}-0.log", "ingest subscribed")
        pub.connect(address.host, address.port)
        pub.loop_start()
        published: list[Reading] = []
        for i in range(120):
            readings = batch(i)
            pub.publish("lingtan/v1/plant/gw/readings", uplink.encode("gw", "plant", readings),
                        qos=1).wait_for_publish(5)
            published += readings
            if i == 50:
                workers["ingest-a"].send_signal(signal.SIGKILL)  # no goodbye, mid-stream
                workers["ingest-a"].wait(5)
            time.sleep(0.01)
        workers["ingest-a"] = start_worker("ingest-a", tmp_path, db, broker, 1)
        deadline = time.monotonic() + 60
        rows = db_rows(db)
        while len(rows) < len(published) and time.monotonic() < deadline:
            time.sleep(0.3)
            rows = db_rows(db)
        want = sorted(("gw-meter-" + r.meter_id[-1], r.quantity, r.time, r.value) for r in published)
        assert sorted(rows) == want  # every reading, once
        # the workers are central: they keep the rollups of what they write current, both at once
        deadline = time.monotonic() + 30
        while rollup_state(db) != (0, len(published)) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert rollup_state(db) == (0, len(published))
        # both workers took a share of the stream before the kill
        for w in ("ingest-a", "ingest-b"):
            assert "uplink batch buffered" in (tmp_path / f"{w}-0.log").read_text(errors="replace")
    finally:
        pub.loop_stop()
        pub.disconnect()
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {w: p.wait(20) for w, p in workers.items()}
        broker.stop()
    assert codes == {"ingest-a": 0, "ingest-b": 0}
    for w in ("ingest-a", "ingest-b"):  # nothing dropped, nothing left behind in either buffer
        buffer = DiskBuffer(tmp_path / f"{w}.db")
        try:
            assert (buffer.counter("dropped"), buffer.pending()) == (0, 0)
        finally:
            buffer.close()
