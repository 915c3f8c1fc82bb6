"""Exactly one evaluator across processes: the advisory-lock leader evaluates and mails, the other
waits, and takes over when the leader's process dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.scheduler import AlertScheduler
from lingtan.core.alerts import store
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


def seed(db: str) -> int:
    engine = get_engine(db)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('s', 'S')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name) VALUES ('m', 's', 'm')"))
    store_readings(db, [Reading(T0 + timedelta(minutes=i), "m", "active_power", 5.0) for i in range(5)])
    rule = parse_rule({"kind": "offline", "name": "m online", "scope": {"site_id": "s", "meter_id": "m"},
                       "after_s": 300, "recipients": [{"email": "a@example.com", "language": "zh"}]})
    with engine.begin() as conn:
        return store.create_rule(conn, rule)


def test_two_schedulers_evaluate_and_mail_once(db, settings, smtp):
    rule_id = seed(db)
    a, b = AlertScheduler(settings), AlertScheduler(settings)
    try:
        now = T0 + timedelta(minutes=30)
        results = [a.tick(now), b.tick(now), b.tick(now + timedelta(minutes=1)),
                   a.tick(now + timedelta(minutes=2))]
        assert [r.leader for r in results] == [True, False, False, True]
        assert [r.evaluated for r in results] == [[rule_id], [], [], [rule_id]]
        assert len(smtp.inbox.messages) == 1
        assert smtp.inbox.messages[0]["Subject"].startswith("[Lingtan 告警触发] m online")
    finally:
        a.stop()
        b.stop()


HOLDER = """
import sys, time
from api.scheduler import Leader
leader = Leader(sys.argv[1])
assert leader.check()
print("leader", flush=True)
time.sleep(3600)
"""


def test_a_second_process_takes_over_when_the_leader_dies(db, settings):
    seed(db)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db], stdout=subprocess.PIPE, text=True,
                              cwd=os.getcwd())
    waiter = AlertScheduler(settings)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "leader"
        assert not waiter.tick(T0).leader
        holder.send_signal(signal.SIGKILL)  # no clean shutdown: the server must notice on its own
        holder.wait()
        # The server ends the dead session as soon as it sees the socket close; poll for that.
        for _ in range(600):
            if waiter.tick(T0).leader:
                break
            time.sleep(0.05)
        assert waiter.leader.is_leader
    finally:
        if holder.poll() is None:
            holder.kill()
        waiter.stop()


def test_a_broken_rule_does_not_stop_the_others(db, settings):
    good = seed(db)
    engine = get_engine(db)
    with engine.begin() as conn:
        bad = conn.execute(sa.text(
            "INSERT INTO alert_rules (name, definition)"
            " VALUES ('bad', '{\"kind\": \"nonsense\"}') RETURNING id"
        )).scalar_one()
    s = AlertScheduler(settings)
    try:
        result = s.tick(T0 + timedelta(minutes=30))
    finally:
        s.stop()
    assert result.evaluated == [good] and "kind" in result.failed[bad]


ADVISORY = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


def test_the_api_lifespan_runs_the_scheduler_and_stops_it(api_db, monkeypatch):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from lingtan.kernel.settings import get_settings

    monkeypatch.setenv("LINGTAN_ALERTS_TICK_SECONDS", "0.2")
    get_settings.cache_clear()
    engine = get_engine(api_db)
    with TestClient(create_app()):
        for _ in range(600):  # the first tick runs at start-up; poll until it holds the lock
            with engine.connect() as conn:
                if conn.execute(sa.text(ADVISORY)).scalar_one() == 1:
                    break
            time.sleep(0.05)
        with engine.connect() as conn:
            assert conn.execute(sa.text(ADVISORY)).scalar_one() == 1
    # Shutdown closes the leader's connection: the lock is free for another process at once.
    with engine.connect() as conn:
        assert conn.execute(sa.text(ADVISORY)).scalar_one() == 0
