"""A meter that stops reporting raises an offline alert; an SMTP outage during the firing delays the
e-mail (retried with backoff) but neither loses nor duplicates it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from lingtan.core.alerts import outbox, store
from lingtan.core.alerts.evaluate import evaluate_rule
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


def seed(db: str) -> None:
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('s', 'S')"))
        for m in ("m1", "m2", "gas"):
            conn.execute(sa.text("INSERT INTO meters (id, site_id, name, role) VALUES (:m, 's', :m, 'load')"),
                         {"m": m})
    # m1 reports for the whole hour, m2 stops after 20 minutes; "gas" never measures power.
    readings = [Reading(T0 + timedelta(minutes=i), "m1", "active_power", 10.0) for i in range(60)]
    readings += [Reading(T0 + timedelta(minutes=i), "m2", "active_power", 5.0) for i in range(20)]
    store_readings(db, readings)


def test_stopped_meter_fires_offline_and_smtp_outage_delays_but_loses_nothing(db, settings, smtp):
    seed(db)
    engine = get_engine(db)
    rule = parse_rule({"kind": "offline", "name": "Meters online", "scope": {"site_id": "s"},
                       "after_s": 600, "recipients": [{"email": "field@example.com", "language": "en"}]})
    with engine.begin() as conn:
        rule_id = store.create_rule(conn, rule)

    def evaluate(t: datetime) -> None:
        with engine.begin() as conn:
            evaluate_rule(conn, rule_id, rule, settings, t)

    evaluate(T0 + timedelta(minutes=25))  # m2 silent for 6 min: not yet
    assert smtp.inbox.messages == []
    smtp.stop()  # the relay goes down just as the meter crosses the limit
    fired = T0 + timedelta(minutes=31)
    evaluate(fired)
    with engine.connect() as conn:
        states = {s.subject: s.state for s in store.list_states(conn, rule_id)}
    assert states == {"meter:m1": "ok", "meter:m2": "firing", "meter:gas": "ok"}

    first = outbox.deliver(engine, settings, fired)
    assert (first.sent, first.failed) == (0, 1)
    with engine.connect() as conn:
        attempts, due, status = conn.execute(sa.text(
            "SELECT attempts, next_attempt_at, status FROM alert_outbox")).one()
    assert (attempts, status) == (1, "pending") and due == fired + timedelta(seconds=30)
    # Not due yet: nothing is tried, however often the scheduler ticks.
    assert outbox.deliver(engine, settings, fired + timedelta(seconds=10)).failed == 0
    # Still down at the retry: the delay doubles.
    assert outbox.deliver(engine, settings, due).failed == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT next_attempt_at FROM alert_outbox")).scalar_one() == \
            due + timedelta(seconds=60)

    # Evaluations go on during the outage and queue nothing new for the same episode.
    evaluate(fired + timedelta(minutes=1))
    evaluate(fired + timedelta(minutes=2))
    smtp.start()
    later = fired + timedelta(minutes=5)
    assert outbox.deliver(engine, settings, later).sent == 1
    assert outbox.deliver(engine, settings, later + timedelta(hours=1)).sent == 0
    assert len(smtp.inbox.messages) == 1
    msg = smtp.inbox.messages[0]
    assert msg["Subject"].startswith("[Lingtan FIRING] Meters online — meter:m2")
    body = smtp.inbox.text(msg)
    assert "Current value: 12 min" in body  # last reading 00:19, evaluated 00:31
    assert "Threshold: > 10 min" in body


def test_backoff_doubles_to_an_hour():
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 30)] == [
        30, 60, 120, 1920, 3600, 3600]


def test_a_maintenance_window_mutes_the_firing_until_it_ends(db, settings, smtp):
    seed(db)
    engine = get_engine(db)
    rule = parse_rule({"kind": "offline", "name": "m2 online", "scope": {"site_id": "s", "meter_id": "m2"},
                       "after_s": 600, "recipients": [{"email": "field@example.com", "language": "en"}]})
    with engine.begin() as conn:
        rule_id = store.create_rule(conn, rule)
        # Maintenance on the meter (no rule named), 00:30–01:00.
        store.add_silence(conn, rule_id=None, site_id=None, meter_id="m2",
                          starts_at=T0 + timedelta(minutes=30), ends_at=T0 + timedelta(hours=1),
                          comment="rewiring", created_by="test")
    for minute in (31, 45, 59, 60, 61):
        with engine.begin() as conn:
            evaluate_rule(conn, rule_id, rule, settings, T0 + timedelta(minutes=minute))
        outbox.deliver(engine, settings, T0 + timedelta(minutes=minute))
        if minute < 60:
            assert smtp.inbox.messages == []
    # Still offline when the window ended: the firing goes out then, once.
    assert len(smtp.inbox.messages) == 1
    assert "Current value: 41 min" in smtp.inbox.text(smtp.inbox.messages[0])
