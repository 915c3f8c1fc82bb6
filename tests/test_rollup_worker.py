"""The central rollup refresher: refreshes take turns across processes, the worker thread catches
up and stops on request, and `lingtan rollups` runs it until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from gateway.sinks.postgres import PostgresSink
from lingtan.core import rollups
from lingtan.core.rollup_worker import RollupRefresher, RollupWorker
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def fetch(url: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, args).fetchall()


def write(url: str, readings: list[Reading]) -> None:
    sink = PostgresSink(url)
    try:
        sink.write(readings)
    finally:
        sink.close()


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def waiting_on_lock(url: str, pid: int) -> bool:
    sql = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s"
    return fetch(url, sql, pid) == [(True,)]


def levels(url: str) -> list[tuple]:
    return [fetch(url, f"SELECT count, max FROM {t}")[0] for t, _, _ in rollups.LEVELS[1:]]


def test_two_refreshes_at_once_take_turns_so_shared_buckets_miss_nothing(db: str) -> None:
    # two minutes of one series, rolled up; then a late reading in each minute: two marks, one
    # 15 min bucket (and hour and day) above both
    write(db, [Reading(T0 + timedelta(seconds=s), "m", "active_power", 1.0) for s in range(0, 120, 10)])
    RollupRefresher(db).refresh_all()
    write(db, [Reading(T0 + timedelta(seconds=1), "m", "active_power", 100.0)])
    write(db, [Reading(T0 + timedelta(seconds=61), "m", "active_power", 200.0)])
    blocker = psycopg.connect(libpq_url(db))
    a, b = psycopg.connect(libpq_url(db)), psycopg.connect(libpq_url(db))
    try:
        # hold the 15 min row so that the first refresh stops half-way, its marks claimed
        blocker.execute("SELECT 1 FROM readings_15m FOR UPDATE")
        first = threading.Thread(target=rollups.refresh_dirty, args=(a, 1))
        first.start()
        wait_until(lambda: waiting_on_lock(db, a.info.backend_pid), 10, "the first refresh to block")
        # a second refresher (another process) starts meanwhile; it must wait for the first, not
        # claim the other minute and rebuild the shared buckets from a snapshot without the first's
        second = threading.Thread(target=rollups.refresh_dirty, args=(b, 1))
        second.start()
        wait_until(lambda: waiting_on_lock(db, b.info.backend_pid), 10, "the second refresh to block")
        blocker.rollback()
        first.join(10)
        second.join(10)
        assert not first.is_alive() and not second.is_alive()
    finally:
        for conn in (blocker, a, b):
            conn.close()
    assert fetch(db, "SELECT count(*) FROM rollup_dirty") == [(0,)]
    assert levels(db) == [(14, 200.0)] * 3  # every reading, in every level above the minutes


def test_the_worker_catches_up_in_rounds_and_stop_cancels_a_refresh_in_progress(db: str) -> None:
    worker = RollupWorker(db, every=0.1)
    worker.start()
    try:
        write(db, [Reading(T0 + timedelta(seconds=s), "m", "active_power", 2.0) for s in range(0, 180, 5)])
        wait_until(lambda: fetch(db, "SELECT count(*) FROM rollup_dirty") == [(0,)], 10, "the marks")
        assert fetch(db, "SELECT sum(count) FROM readings_1m") == [(36,)]
        assert fetch(db, "SELECT count FROM readings_1d") == [(36,)]
        # later readings are the next round's
        write(db, [Reading(T0 + timedelta(minutes=5), "m", "active_power", 3.0)])
        wait_until(lambda: fetch(db, "SELECT count FROM readings_1d") == [(37,)], 10, "the next round")
        # a refresh that cannot finish (another holds the turn) is cancelled by stop(): the
        # thread ends and the marks stay for the next refresher
        with psycopg.connect(libpq_url(db)) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (rollups.REFRESH_LOCK,))
            write(db, [Reading(T0 + timedelta(minutes=6), "m", "active_power", 4.0)])
            time.sleep(0.5)  # the worker is waiting for the turn now
            started = time.monotonic()
            worker.stop(timeout=0.5)
            assert not worker.running and time.monotonic() - started < 5
        assert fetch(db, "SELECT count(*) FROM rollup_dirty") == [(1,)]
        assert (worker.refreshed, worker.last_error) == (4, None)  # buckets: 3 minutes, then 1
    finally:
        worker.stop()


def test_lingtan_rollups_catches_up_on_marks_and_stops_on_sigterm(db: str, tmp_path: Path) -> None:
    write(db, [Reading(T0 + timedelta(seconds=s), "m", "active_energy_import", s / 100)
               for s in range(0, 240, 10)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGTAN_")}
    env.update({"LINGTAN_DATABASE_URL": db, "LINGTAN_LOG_FORMAT": "text", "LINGTAN_LOG_LEVEL": "INFO"})
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "lingtan.cli", "rollups", "--every", "0.5"],
                                cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        wait_until(lambda: fetch(db, "SELECT count(*) FROM rollup_dirty") == [(0,)], 30, "the first catch-up")
        [(count, delta)] = fetch(db, "SELECT count, delta FROM readings_1h")
        assert (count, round(delta, 9)) == (24, 2.3)
        write(db, [Reading(T0 + timedelta(minutes=10), "m", "active_energy_import", 3.0)])
        wait_until(lambda: fetch(db, "SELECT count FROM readings_1h") == [(25,)], 30, "the new reading")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    said = out.read_text()
    assert code == 0, said + err.read_text()
    assert "refreshing marked rollup buckets (4 marked now) every 0.5 s" in said
    assert "stopped after refreshing" in said
    logged = err.read_text()
    assert "rollup refresher started" in logged and "rollup refresher stopped" in logged
