"""The deviation, gateway_offline and data_quality rule kinds through the API: good definitions are
stored with their defaults, bad ones are refused with the offending field named."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from lingtan.core.alerts.rules import RuleError, parse_rule
from lingtan.kernel.db import get_engine

BASE = {"name": "r", "scope": {"site_id": "s"}, "recipients": [{"email": "a@example.com"}]}
DEVIATION = {**BASE, "kind": "deviation", "margin": 0.2}
GATEWAY = {**BASE, "kind": "gateway_offline"}
RESET = {**BASE, "kind": "data_quality", "check": "counter_reset"}
FROZEN = {**BASE, "kind": "data_quality", "check": "frozen"}
DEAD = {**BASE, "kind": "data_quality", "check": "dead_letters"}
INTENSITY = {**BASE, "kind": "threshold", "metric": "carbon_intensity", "threshold": 0.6}
BUDGET = {**BASE, "kind": "budget", "metric": "co2_t", "period": "month", "budget": 100}


@pytest.fixture
def engineer(api_db, auth_headers) -> TestClient:
    with get_engine(api_db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('s', 'S')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name, role, gateway_id) VALUES"
                             " ('m', 's', 'm', 'load', 'gw-1'), ('c', 's', 'c', 'compressor', NULL)"))
    return TestClient(create_app(), headers=auth_headers("engineer"))


@pytest.mark.parametrize(("body", "defaults"), [
    (DEVIATION, {"window": "rolling", "window_s": 3600, "weeks": 4, "min_coverage": 0.5,
                 "metric": "energy_kwh"}),
    ({**DEVIATION, "window": "day_so_far", "scope": {"site_id": "s", "role": "load"}}, {"window_s": 3600}),
    (GATEWAY, {"after_s": 300, "gateway_id": None}),
    ({**GATEWAY, "gateway_id": "gw-1"}, {"after_s": 300}),
    ({**GATEWAY, "scope": {"site_id": "s", "meter_id": "m"}}, {}),
    (RESET, {"quantity": "active_energy_import", "window_s": 3600}),
    ({**FROZEN, "quantity": "voltage"}, {"window_s": 1800, "fresh_s": 300}),
    ({**DEAD, "gateway_id": "gw-1", "interval_s": 900}, {"interval_s": 900}),
    (INTENSITY, {"basis": "location"}),
    ({**BUDGET, "basis": "market"}, {"basis": "market"}),
])
def test_new_kinds_are_stored_with_their_defaults(engineer, body, defaults):
    r = engineer.post("/api/v1/alerts/rules", json=body)
    assert r.status_code == 201, r.text
    stored = r.json()["definition"]
    assert stored["kind"] == body["kind"] and stored.get("check") == body.get("check")
    assert {k: stored[k] for k in defaults} == defaults


@pytest.mark.parametrize(("body", "field"), [
    ({**DEVIATION, "margin": None}, "margin"),
    ({k: v for k, v in DEVIATION.items() if k != "margin"}, "margin"),
    ({**DEVIATION, "margin": -0.1}, "margin"),
    ({**DEVIATION, "weeks": 0}, "weeks"),
    ({**DEVIATION, "metric": "co2_t"}, "metric"),
    ({**DEVIATION, "min_coverage": 1.5}, "min_coverage"),
    ({**DEVIATION, "window": "day_so_far", "window_s": 600}, "window_s"),
    ({**DEVIATION, "window": "week"}, "window"),
    ({**GATEWAY, "after_s": 10}, "after_s"),
    ({**GATEWAY, "gateway_id": "no spaces"}, "gateway_id"),
    ({**GATEWAY, "gateway_id": "gw-1", "scope": {"site_id": "s", "role": "load"}}, "gateway_id"),
    ({**RESET, "quantity": "voltage"}, "quantity"),
    ({**RESET, "window_s": 60}, "window_s"),
    ({**FROZEN, "quantity": "active_energy_import"}, "quantity"),
    ({**FROZEN, "quantity": "state"}, "quantity"),
    ({**FROZEN, "fresh_s": 5}, "fresh_s"),
    ({**DEAD, "window_s": 600}, "window_s"),  # T is interval_s for this check
    ({**INTENSITY, "basis": "residual"}, "basis"),
    ({**INTENSITY, "metric": "power_kw", "basis": "market"}, "basis"),  # power has no Scope 2 basis
    ({**BUDGET, "metric": "energy_kwh", "basis": "market"}, "basis"),
])
def test_bad_new_rules_are_refused_naming_the_field(engineer, body, field):
    r = engineer.post("/api/v1/alerts/rules", json=body)
    assert r.status_code == 422
    problem = r.json()
    assert any(e["field"].endswith(field) for e in problem["errors"]), problem
    assert field in problem["detail"]
    # The same definition, parsed on its own (as the scheduler and the CLI do), names the field
    # without the union tags.
    with pytest.raises(RuleError) as err:
        parse_rule(body)
    assert err.value.field == field


@pytest.mark.parametrize("check", ["nope", None])
def test_an_unknown_or_missing_check_is_named(engineer, check):
    body = {**FROZEN, "check": check} if check else {k: v for k, v in FROZEN.items() if k != "check"}
    r = engineer.post("/api/v1/alerts/rules", json=body)
    assert r.status_code == 422
    assert "'check'" in r.json()["errors"][0]["message"]
    with pytest.raises(RuleError) as err:
        parse_rule(body)
    assert err.value.field == "check"


@pytest.mark.parametrize(("body", "field"), [
    ({**GATEWAY, "gateway_id": "gw-elsewhere"}, "body.gateway_id"),
    ({**DEAD, "gateway_id": "gw-elsewhere"}, "body.gateway_id"),
    ({**GATEWAY, "scope": {"site_id": "s", "meter_id": "c"}}, "body.scope.meter_id"),
    ({**RESET, "scope": {"site_id": "s", "meter_id": "ghost"}}, "body.scope.meter_id"),
])
def test_gateways_and_meters_the_site_does_not_have_are_refused(engineer, body, field):
    r = engineer.post("/api/v1/alerts/rules", json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
