"""Alert routes: rules CRUD (engineer), refusals naming the field, test without side effects,
events with filters, acknowledgement and silences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from lingtan.core import latest
from lingtan.core.alerts.evaluate import evaluate_rule
from lingtan.core.alerts.rules import RuleError, parse_rule
from lingtan.kernel.db import get_engine

RULE = {"kind": "threshold", "name": "Load high", "scope": {"site_id": "s"}, "metric": "power_kw",
        "threshold": 100, "recipients": [{"email": "a@example.com", "language": "en"}]}


@pytest.fixture
def engineer(api_db, auth_headers) -> TestClient:
    with get_engine(api_db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('s', 'S')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name, role) VALUES"
                             " ('m', 's', 'm', 'load'), ('c', 's', 'c', 'compressor')"))
    return TestClient(create_app(), headers=auth_headers("engineer"))


def test_rules_crud_and_roles(engineer, api_client):
    r = engineer.post("/api/v1/alerts/rules", json=RULE)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["definition"]["window_s"] == 900 and rule["definition"]["hysteresis"] == 0
    # Viewers read but do not write.
    assert api_client.get(f"/api/v1/alerts/rules/{rule['id']}").json()["definition"]["name"] == "Load high"
    assert api_client.post("/api/v1/alerts/rules", json=RULE).status_code == 403
    assert api_client.get("/api/v1/alerts/rules").json()["total"] == 1

    changed = engineer.put(f"/api/v1/alerts/rules/{rule['id']}", json={**RULE, "threshold": 150})
    assert changed.status_code == 200 and changed.json()["definition"]["threshold"] == 150
    assert engineer.delete(f"/api/v1/alerts/rules/{rule['id']}").status_code == 204
    assert engineer.get(f"/api/v1/alerts/rules/{rule['id']}").status_code == 404


@pytest.mark.parametrize(("patch", "field"), [
    ({"kind": "nope"}, "body"),
    ({"threshold": "high"}, "threshold"),
    ({"window_s": 5}, "window_s"),
    ({"recipients": [{"email": "not-an-address"}]}, "recipients.0.email"),
    ({"scope": {"site_id": "s", "meter_id": "m", "role": "load"}}, "scope.role"),
    ({"scope": {"site_id": "s", "role": "load"}, "metric": "carbon_intensity"}, "metric"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_rules_are_refused_naming_the_field(engineer, patch, field):
    r = engineer.post("/api/v1/alerts/rules", json={**RULE, **patch})
    assert r.status_code == 422
    problem = r.json()
    assert any(e["field"].endswith(field) for e in problem["errors"]), problem
    assert field.split(".")[-1] in problem["detail"]


@pytest.mark.parametrize(("scope", "field"), [
    ({"site_id": "nowhere"}, "body.scope.site_id"),
    ({"site_id": "s", "meter_id": "ghost"}, "body.scope.meter_id"),
])
def test_rules_naming_missing_sites_or_meters_are_refused(engineer, scope, field):
    r = engineer.post("/api/v1/alerts/rules", json={**RULE, "scope": scope})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field


def test_parse_rule_names_the_field_without_the_kind_tag():
    with pytest.raises(RuleError) as err:
        parse_rule({**RULE, "kind": "budget", "metric": "energy_kwh", "period": "week", "budget": 1})
    assert err.value.field == "period"
    with pytest.raises(RuleError) as err:
        parse_rule({"kind": "budget", "name": "b", "scope": {"site_id": "s", "meter_id": "m"},
                    "metric": "co2_t", "period": "day", "budget": 1})
    assert err.value.field == "scope"


def test_test_route_shows_what_it_would_send_and_stores_nothing(engineer, api_db):
    rule = engineer.post("/api/v1/alerts/rules", json={
        "kind": "offline", "name": "m online", "scope": {"site_id": "s", "meter_id": "m"},
        "recipients": [{"email": "a@example.com", "language": "zh"}]}).json()
    out = engineer.post(f"/api/v1/alerts/rules/{rule['id']}/test").json()
    assert [(o["subject"], o["state_before"], o["state_after"], o["notice"]) for o in out] == [
        ("meter:m", "ok", "firing", "firing")]
    assert out[0]["would_send"][0]["subject"].startswith("[Lingtan 告警触发] m online")
    with get_engine(api_db).connect() as conn:
        for table in ("alert_states", "alert_events", "alert_outbox"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_events_filters_ack_and_silences(engineer, api_client, api_db):
    from lingtan.kernel.settings import get_settings

    rule = engineer.post("/api/v1/alerts/rules", json={
        "kind": "offline", "name": "offline", "scope": {"site_id": "s"}, "severity": "critical",
        "renotify_s": 3600, "recipients": []}).json()
    definition = parse_rule(rule["definition"])
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    with get_engine(api_db).begin() as conn:
        conn.execute(sa.text("INSERT INTO readings VALUES (:t, 'm', 'active_power', 1, 0),"
                             " (:t, 'c', 'active_power', 1, 0)"), {"t": t0})
        latest.catch_up(conn.connection.driver_connection, t0)
        evaluate_rule(conn, rule["id"], definition, get_settings(), t0 + timedelta(minutes=30))
    events = api_client.get("/api/v1/alerts/events", params={"kind": "firing"}).json()
    assert events["total"] == 2 and {e["subject"] for e in events["items"]} == {"meter:m", "meter:c"}
    only_m = api_client.get("/api/v1/alerts/events", params={"subject": "meter:m", "rule_id": rule["id"]})
    assert only_m.json()["total"] == 1
    later = api_client.get("/api/v1/alerts/events", params={"since": "2026-06-02T00:00:00Z"}).json()
    assert later["total"] == 0
    naive = api_client.get("/api/v1/alerts/events", params={"since": "2026-06-02T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.since"

    ack = engineer.post(f"/api/v1/alerts/rules/{rule['id']}/ack", json={"subject": "meter:m"})
    assert ack.status_code == 200 and ack.json()["acked_at"] is not None
    assert api_client.post(f"/api/v1/alerts/rules/{rule['id']}/ack", json={"subject": "meter:m"}
                           ).status_code == 403
    states = {s["subject"]: s for s in api_client.get("/api/v1/alerts/states").json()}
    assert states["meter:m"]["acked_by"] and states["meter:c"]["acked_by"] is None
    assert api_client.get("/api/v1/alerts/events", params={"kind": "acknowledged"}).json()["total"] == 1

    bad = engineer.post("/api/v1/alerts/silences", json={
        "site_id": "s", "starts_at": "2026-06-01T10:00:00Z", "ends_at": "2026-06-01T09:00:00Z"})
    assert bad.status_code == 422 and "ends_at" in bad.json()["detail"] + str(bad.json()["errors"])
    created = engineer.post("/api/v1/alerts/silences", json={
        "meter_id": "c", "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z",
        "comment": "compressor overhaul"})
    assert created.status_code == 201
    assert [s["meter_id"] for s in api_client.get("/api/v1/alerts/silences?active=true").json()] == ["c"]
    assert engineer.delete(f"/api/v1/alerts/silences/{created.json()['id']}").status_code == 204
    assert api_client.get("/api/v1/alerts/silences").json() == []
