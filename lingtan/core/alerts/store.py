"""Rules, states, events and silences in the database. Functions run in the caller's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lingtan.core.alerts.evaluate import AnyRule, Outcome, evaluate_rule, record_event
from lingtan.core.alerts.rules import check_rule, parse_rule
from lingtan.core.alerts.state import AlertState, acknowledge
from lingtan.core.queries import NotFound
from lingtan.kernel.settings import Settings


@dataclass
class StoredRule:
    id: int
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _dump(rule: AnyRule) -> str:
    return rule.model_dump_json()


def create_rule(conn: sa.Connection, rule: AnyRule) -> int:
    check_rule(conn, rule)
    return conn.execute(sa.text(
        "INSERT INTO alert_rules (name, enabled, definition) VALUES (:n, :e, CAST(:d AS jsonb)) RETURNING id"
    ), {"n": rule.name, "e": rule.enabled, "d": _dump(rule)}).scalar_one()


def replace_rule(conn: sa.Connection, rule_id: int, rule: AnyRule) -> None:
    """Replace a rule's definition. Its alert states are kept only if the scope is unchanged:
    a state describes a subject, and a new scope has different subjects."""
    check_rule(conn, rule)
    old = get_rule(conn, rule_id)
    conn.execute(sa.text(
        "UPDATE alert_rules SET name = :n, enabled = :e, definition = CAST(:d AS jsonb), updated_at = now()"
        " WHERE id = :id"
    ), {"n": rule.name, "e": rule.enabled, "d": _dump(rule), "id": rule_id})
    if parse_rule(old.definition).scope != rule.scope:
        conn.execute(sa.text("DELETE FROM alert_states WHERE rule_id = :id"), {"id": rule_id})


def get_rule(conn: sa.Connection, rule_id: int) -> StoredRule:
    row = conn.execute(sa.text(
        "SELECT id, enabled, definition, created_at, updated_at FROM alert_rules WHERE id = :id"
    ), {"id": rule_id}).first()
    if row is None:
        raise NotFound(f"alert rule {rule_id} not found")
    return StoredRule(*row)


def list_rules(conn: sa.Connection, limit: int, offset: int) -> tuple[list[StoredRule], int]:
    rows = conn.execute(sa.text(
        "SELECT id, enabled, definition, created_at, updated_at FROM alert_rules ORDER BY id"
        " LIMIT :n OFFSET :o"), {"n": limit, "o": offset})
    total = conn.execute(sa.text("SELECT count(*) FROM alert_rules")).scalar_one()
    return [StoredRule(*r) for r in rows], total


def delete_rule(conn: sa.Connection, rule_id: int) -> None:
    gone = conn.execute(sa.text("DELETE FROM alert_rules WHERE id = :id RETURNING id"),
                        {"id": rule_id}).first()
    if gone is None:
        raise NotFound(f"alert rule {rule_id} not found")


@dataclass
class StateRow:
    rule_id: int
    subject: str
    state: str
    since: datetime
    last_value: float | None
    last_evaluated_at: datetime | None
    last_notified_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None


_STATES = ("SELECT rule_id, subject, state, since, last_value, last_evaluated_at, last_notified_at,"
           " acked_by, acked_at FROM alert_states")


def list_states(conn: sa.Connection, rule_id: int | None = None) -> list[StateRow]:
    where, params = ("", {}) if rule_id is None else (" WHERE rule_id = :r", {"r": rule_id})
    rows = conn.execute(sa.text(_STATES + where + " ORDER BY rule_id, subject"), params)
    return [StateRow(*r) for r in rows]


def ack(conn: sa.Connection, rule_id: int, subject: str, by: str, now: datetime) -> StateRow:
    """Acknowledge a firing alert (state.NotFiring if it is not firing)."""
    row = conn.execute(sa.text(
        "SELECT state, since, last_value, notified, last_notified_at, acked_by, acked_at FROM alert_states"
        " WHERE rule_id = :r AND subject = :s FOR UPDATE"), {"r": rule_id, "s": subject}).first()
    if row is None:
        raise NotFound(f"rule {rule_id} has no alert for {subject!r}")
    prev = AlertState(*row)
    new = acknowledge(prev, by, now)
    if new is not prev:
        conn.execute(sa.text("UPDATE alert_states SET acked_by = :b, acked_at = :t WHERE rule_id = :r"
                             " AND subject = :s"), {"b": by, "t": now, "r": rule_id, "s": subject})
        rule = parse_rule(get_rule(conn, rule_id).definition)
        record_event(conn, rule_id, rule, subject, "acknowledged", now, prev.last_value, None, {"by": by})
    return next(s for s in list_states(conn, rule_id) if s.subject == subject)


@dataclass
class Event:
    id: int
    rule_id: int
    rule_name: str
    subject: str
    kind: str
    severity: str
    time: datetime
    value: float | None
    threshold: float | None
    details: dict[str, Any]


def list_events(conn: sa.Connection, limit: int, offset: int, *, rule_id: int | None = None,
                kind: str | None = None, severity: str | None = None, subject: str | None = None,
                since: datetime | None = None, until: datetime | None = None) -> tuple[list[Event], int]:
    """Newest first, filtered by any of rule, kind, severity, subject and time range [since, until)."""
    conds, params = [], {"n": limit, "o": offset}
    for col, value in (("rule_id", rule_id), ("kind", kind), ("severity", severity), ("subject", subject)):
        if value is not None:
            conds.append(f"{col} = :{col}")
            params[col] = value
    if since is not None:
        conds.append("time >= :since")
        params["since"] = since
    if until is not None:
        conds.append("time < :until")
        params["until"] = until
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    rows = conn.execute(sa.text(
        "SELECT id, rule_id, rule_name, subject, kind, severity, time, value, threshold, details"
        f" FROM alert_events{where} ORDER BY time DESC, id DESC LIMIT :n OFFSET :o"), params)
    total = conn.execute(sa.text(f"SELECT count(*) FROM alert_events{where}"), params).scalar_one()
    return [Event(*r) for r in rows], total


@dataclass
class Silence:
    id: int
    rule_id: int | None
    site_id: str | None
    meter_id: str | None
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    created_at: datetime


_SILENCES = ("SELECT id, rule_id, site_id, meter_id, starts_at, ends_at, comment, created_by, created_at"
             " FROM alert_silences")


def add_silence(conn: sa.Connection, *, rule_id: int | None, site_id: str | None, meter_id: str | None,
                starts_at: datetime, ends_at: datetime, comment: str, created_by: str) -> Silence:
    if rule_id is not None:
        get_rule(conn, rule_id)
    sid = conn.execute(sa.text(
        "INSERT INTO alert_silences (rule_id, site_id, meter_id, starts_at, ends_at, comment, created_by)"
        " VALUES (:r, :s, :m, :a, :b, :c, :by) RETURNING id"),
        {"r": rule_id, "s": site_id, "m": meter_id, "a": starts_at, "b": ends_at, "c": comment,
         "by": created_by}).scalar_one()
    return Silence(*conn.execute(sa.text(_SILENCES + " WHERE id = :id"), {"id": sid}).one())


def list_silences(conn: sa.Connection, active_at: datetime | None = None) -> list[Silence]:
    if active_at is None:
        rows = conn.execute(sa.text(_SILENCES + " ORDER BY starts_at DESC, id DESC"))
    else:
        rows = conn.execute(sa.text(_SILENCES + " WHERE starts_at <= :t AND ends_at > :t ORDER BY id"),
                            {"t": active_at})
    return [Silence(*r) for r in rows]


def delete_silence(conn: sa.Connection, silence_id: int) -> None:
    if conn.execute(sa.text("DELETE FROM alert_silences WHERE id = :id RETURNING id"),
                    {"id": silence_id}).first() is None:
        raise NotFound(f"silence {silence_id} not found")


def rule_json(rule: AnyRule) -> dict[str, Any]:
    return json.loads(_dump(rule))


def dry_run(conn: sa.Connection, rule_id: int, settings: Settings, now: datetime) -> list[Outcome]:
    """Evaluate a stored rule at ``now`` and roll back: the outcomes (value, state change, rendered
    e-mails) without storing a state, an event or a message."""
    rule = parse_rule(get_rule(conn, rule_id).definition)
    try:
        return evaluate_rule(conn, rule_id, rule, settings, now)
    finally:
        conn.rollback()
