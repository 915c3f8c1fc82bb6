"""Two `lingtan ingest` worker processes share a gateway's uplink; one is SIGKILLed while it is
committing a batch. Afterwards the database holds exactly the readings the gateway produced.

Why nothing is lost: the gateway keeps each batch in its disk buffer until an ingest worker
acknowledges it on the gateway's ack topic, which a worker does only after its transaction
committed. The killed worker never committed, so never acknowledged; the gateway sends the batch
again and the surviving worker commits it. The database key takes a repeated reading once.

"Mid-batch" is made exact rather than timed: the test holds an uncommitted row with the key of
one reading the gateway will send, so the worker that receives that batch blocks inside its COPY;
the test finds it in pg_stat_activity (each worker names its session after its client id) and
kills that process there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from gateway.config import parse_config
from gateway.runtime import Gateway
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading
from tests.gateway.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 21, tzinfo=UTC)
TRAP = 640  # index of the reading whose key the test holds uncommitted


def start_worker(worker_id: str, tmp: Path, db: str, broker: Mosquitto) -> subprocess.Popen:
    env = {**os.environ, "LINGTAN_DATABASE_URL": db, "LINGTAN_MQTT_URL": broker.url,
           "LINGTAN_MQTT_PROTOCOL": "5", "LINGTAN_LOG_LEVEL": "DEBUG", "LINGTAN_LOG_FORMAT": "text"}
    log = open(tmp / f"{worker_id}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "lingtan.cli", "ingest", "--id", worker_id,
                             "--dead-letters", str(tmp / f"{worker_id}-dead.db")],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_log(path: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path.name} never logged {text!r}:\n{path.read_text(errors='replace')}")


def produced() -> list[Reading]:
    return [Reading(T0 + timedelta(seconds=i // 10, microseconds=3), f"gw-meter-{i % 10}",
                    "active_power", float(i)) for i in range(1500)]


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


def blocked_writer(db: str, timeout: float = 30) -> str:
    """The application name of the ingest session waiting on the test's uncommitted row."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_url(db), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT application_name FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                " AND application_name LIKE 'ingest-%'").fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    raise AssertionError("no ingest worker ever reached the held reading")


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(db: str, tmp_path: Path):
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    workers = {w: start_worker(w, tmp_path, db, broker) for w in ("ingest-a", "ingest-b")}
    cfg = parse_config(f"""
gateway: {{id: gw-kill, site: plant}}
buffer: {{path: {tmp_path / 'gw-buffer.db'}}}
health: {{listen: null}}
sinks: [{{type: mqtt, url: "{broker.url}", batch: 40, ack_timeout: 2s}}]
devices:
  - {{id: idle, protocol: mqtt, topic: idle/kill, points: [{{quantity: voltage, path: $.v}}]}}
""")
    gateway = Gateway(cfg, None, broker.url, "5")
    readings = produced()
    trap = readings[TRAP]
    holder = psycopg.connect(libpq_url(db))  # an open transaction holding the trap's key
    holder.execute("INSERT INTO readings (time, meter_id, quantity, value, quality)"
                   " VALUES (%s, %s, %s, %s, 0)", (trap.time, trap.meter_id, trap.quantity, -1.0))
    fed = threading.Event()

    def feed() -> None:  # the collectors keep producing whatever happens downstream
        for i in range(0, len(readings), 10):
            gateway.buffer.append(readings[i:i + 10])
            time.sleep(0.01)
        fed.set()

    feeder = threading.Thread(target=feed)
    try:
        for w in workers:
            wait_log(tmp_path / f"{w}.log", "ingest subscribed")
        gateway.start()
        feeder.start()
        victim = blocked_writer(db)
        workers[victim].send_signal(signal.SIGKILL)  # inside its COPY, before any commit
        workers[victim].wait(5)
        holder.rollback()  # the dead worker's transaction can now only abort
        survivor = next(w for w in workers if w != victim)
        assert fed.wait(60)
        deadline = time.monotonic() + 60
        while gateway.buffer.pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert gateway.buffer.pending() == 0, "the gateway still holds unacknowledged readings"
        rows = db_rows(db)
        want = [(r.meter_id, r.quantity, r.time, r.value) for r in readings]
        assert sorted(rows) == sorted(want)  # every reading, once
        assert gateway.sink.resent >= 1  # the killed worker's batch came again, to the survivor
        # the workers are central: they keep the rollups of what they write current
        deadline = time.monotonic() + 30
        while rollup_state(db) != (0, len(readings)) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert rollup_state(db) == (0, len(readings))
        # both workers had taken a share of the stream before the kill
        for w in workers:
            assert "uplink group committed" in (tmp_path / f"{w}.log").read_text(errors="replace")
    finally:
        holder.close()
        feeder.join(30)
        gateway.stop()
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {w: p.wait(20) for w, p in workers.items()}
        broker.stop()
    assert codes[survivor] == 0
