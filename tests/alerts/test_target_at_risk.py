"""The target_at_risk rule on the hand-worked programme of tests/api/test_programme.py.

At 10 January 2023 (site time) 2022 (entered) stands for the last 12 months:
- emissions-2023: projection 2334.9 t against the target 2725.8 t → on track
- green-85: projection 0.4 × 4 / 2 = 80 % against 85 %, short by 0.05 of 0.85 = 6 % (margin 10 %) → at risk
- green-90: projection 80 % against 90 %, short by 0.1 of 0.9 = 11 % (margin 5 %) → off track

The rule counts the watched targets in a firing status (threshold > 0) and names them; the
statuses come from programme_service.targets, never recomputed here.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.scheduler import AlertScheduler
from lingtan.core.alerts import outbox, store
from lingtan.core.alerts.evaluate import Outcome, evaluate_rule
from lingtan.core.alerts.rules import RuleError, TargetRule, parse_rule
from lingtan.core.site_model import import_site_file
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.settings import Settings
from tests.api.test_programme import NOW, SITE_FILE

GREEN_90 = "Green power 90 %"  # green-90 carries a name, so the mail shows names, not only ids


def site_file(**green_values: float) -> dict[str, Any]:
    data = copy.deepcopy(SITE_FILE)
    for t in data["targets"]:
        if t["id"] == "green-90":
            t["name"] = GREEN_90
        if t["id"] in green_values:
            t["value"] = green_values[t["id"]]
    return data


@pytest.fixture
def zc(db: str) -> str:
    with get_engine(db).begin() as conn:
        import_site_file(conn, site_file())
    return db


def rule(**params: Any) -> TargetRule:
    r = parse_rule({"kind": "target_at_risk", "name": "Zero-carbon targets", "scope": {"site_id": "zc-plant"},
                    "recipients": [{"email": "energy@example.com", "language": "en"},
                                   {"email": "nengyuan@example.com", "language": "zh"}], **params})
    assert isinstance(r, TargetRule)
    return r


def run(db: str, r: TargetRule, settings: Settings | None = None, at: datetime = NOW) -> tuple[int, Outcome]:
    with get_engine(db).begin() as conn:
        rule_id = store.create_rule(conn, r)
        [o] = evaluate_rule(conn, rule_id, r, settings or Settings(database_url=db), at)
    return rule_id, o


def named(o: Outcome) -> list[str]:
    return [label for (_, label), _ in o.measurement.details]


def test_a_rule_watching_every_target_fires_for_green_85_and_green_90(zc: str) -> None:
    _, o = run(zc, rule())
    assert o.subject.key == "site:zc-plant"
    assert o.measurement.observation.value == 2.0 and o.measurement.condition.threshold == 0.0
    assert o.step.notice == "firing" and o.step.state.state == "firing"
    assert named(o) == ["green-85", f"{GREEN_90} (green-90)", "fires on"]
    en = o.messages[0].mail
    assert "emissions-2023" not in en.subject + en.text
    assert en.subject == ("[Lingtan FIRING] Zero-carbon targets — Zero-carbon plant: green-85 at risk, "
                          f"{GREEN_90} off track")


def test_a_rule_watching_only_the_emissions_target_does_not_fire(zc: str) -> None:
    _, o = run(zc, rule(targets=["emissions-2023"]))
    assert o.measurement.observation.value == 0.0
    assert o.step.state.state == "ok" and o.step.notice is None and not o.messages
    # Nothing fires, so the details say where the watched target stands.
    [(_, line)] = [d for d in o.measurement.details if d[0][1] == "emissions-2023"]
    assert line[1].startswith("on track, projected 2,334.9 tCO2e in 2023 against the target 2,725.8 tCO2e")


def test_only_off_track_fires_for_green_90_alone(zc: str) -> None:
    _, o = run(zc, rule(statuses=["off_track"]))
    assert o.measurement.observation.value == 1.0 and o.step.notice == "firing"
    assert named(o) == [f"{GREEN_90} (green-90)", "fires on"]
    assert "green-85" not in o.messages[0].mail.subject + o.messages[0].mail.text


def test_the_mail_names_the_targets_with_projection_and_reason(zc: str, settings: Settings, smtp) -> None:
    run(zc, rule(), settings)
    outbox.deliver(get_engine(zc), settings, NOW)
    en = next(m for m in smtp.inbox.messages if m["To"] == "energy@example.com")
    zh = next(m for m in smtp.inbox.messages if m["To"] == "nengyuan@example.com")
    assert str(en["Subject"]) == ("[Lingtan FIRING] Zero-carbon targets — Zero-carbon plant: "
                                  f"green-85 at risk, {GREEN_90} off track")
    assert str(zh["Subject"]) == ("[Lingtan 告警触发] Zero-carbon targets — Zero-carbon plant："
                                  f"green-85（有风险）、{GREEN_90}（偏离目标）")
    body = smtp.inbox.text(en)
    assert "green-85: at risk, projected 80.0% in 2024 against the target 85.0%; " in body
    assert f"{GREEN_90} (green-90): off track, projected 80.0% in 2024 against the target 90.0%; " in body
    # the engine's reason, with the last 12 months' figure and how far short the projection falls
    assert "2022 (latest complete year; the last 12 months have no metered data) 40.0% against" in body
    assert "short by 6% of the change asked for (at risk up to 10%)" in body
    assert "short by 11% of the change asked for" in body
    assert "Current value: 2" in body and "Threshold: > 0" in body
    assert "fires on: at risk or off track" in body
    assert "emissions-2023" not in body
    text = smtp.inbox.text(zh)
    assert "green-85: 有风险，预计 2024 年达到 80.0%，目标 85.0%；" in text
    assert "触发状态: 有风险或偏离目标" in text


def test_it_resolves_once_no_watched_target_is_at_risk(zc: str) -> None:
    rule_id, first = run(zc, rule())
    assert first.step.notice == "firing"
    # The programme is revised: both green targets at 70 %, which the 80 % projection reaches.
    with get_engine(zc).begin() as conn:
        import_site_file(conn, site_file(**{"green-85": 0.7, "green-90": 0.7}))
    r = rule()
    with get_engine(zc).begin() as conn:
        [o] = evaluate_rule(conn, rule_id, r, Settings(database_url=zc), NOW + timedelta(hours=1))
    assert o.measurement.observation.value == 0.0
    assert o.step.transition == "resolved" and o.step.notice == "resolved"
    mail = o.messages[0].mail
    assert mail.subject == ("[Lingtan RESOLVED] Zero-carbon targets — Zero-carbon plant: 3 targets watched, "
                            "none at risk or off track")
    assert "green-85: on track, projected 80.0% in 2024 against the target 70.0%" in mail.text


def test_the_scheduler_evaluates_the_rule_at_most_hourly(zc: str, settings: Settings, smtp) -> None:
    with get_engine(zc).begin() as conn:
        rule_id = store.create_rule(conn, rule())
    s = AlertScheduler(settings)
    try:
        ticks = [s.tick(NOW + timedelta(minutes=m)) for m in (0, 1, 59, 60)]
    finally:
        s.stop()
    assert [t.evaluated for t in ticks] == [[rule_id], [], [], [rule_id]]
    assert len(smtp.inbox.messages) == 2  # one firing e-mail per recipient, once


# --- the API ----------------------------------------------------------------------------------------

BODY = {"kind": "target_at_risk", "name": "Targets", "scope": {"site_id": "zc-plant"},
        "recipients": [{"email": "energy@example.com"}]}


@pytest.fixture
def engineer(api_db: str, auth_headers) -> TestClient:
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, site_file())
    return TestClient(create_app(), headers=auth_headers("engineer"))


def test_the_api_stores_lists_and_tests_the_kind(engineer: TestClient, api_client: TestClient) -> None:
    r = engineer.post("/api/v1/alerts/rules", json=BODY)
    assert r.status_code == 201, r.text
    d = r.json()["definition"]
    assert (d["kind"], d["targets"], d["statuses"], d["interval_s"]) == (
        "target_at_risk", None, ["at_risk", "off_track"], 3600)
    r2 = engineer.post("/api/v1/alerts/rules",
                       json={**BODY, "targets": ["green-90"], "statuses": ["off_track"]})
    assert r2.status_code == 201, r2.text
    listed = api_client.get("/api/v1/alerts/rules").json()
    assert [(i["definition"]["kind"], i["definition"]["targets"]) for i in listed["items"]] == [
        ("target_at_risk", None), ("target_at_risk", ["green-90"])]
    with clock.frozen(NOW):
        [result] = engineer.post(f"/api/v1/alerts/rules/{r.json()['id']}/test").json()
    assert result["value"] == 2 and result["state_after"] == "firing"
    assert "green-85（有风险）" in result["would_send"][0]["subject"]  # zh: the default language


def test_an_unknown_target_is_refused_naming_the_field(engineer: TestClient) -> None:
    r = engineer.post("/api/v1/alerts/rules", json={**BODY, "targets": ["emissions-2023", "green-95"]})
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "body.targets.1"
    assert "'green-95'" in error["message"] and "emissions-2023, green-85, green-90" in error["message"]
    # the same check when a rule is replaced
    rule_id = engineer.post("/api/v1/alerts/rules", json=BODY).json()["id"]
    r = engineer.put(f"/api/v1/alerts/rules/{rule_id}", json={**BODY, "targets": ["green-95"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.targets.0"


def test_an_unknown_target_is_refused_by_the_store(zc: str) -> None:
    with get_engine(zc).begin() as conn, pytest.raises(RuleError) as err:
        store.create_rule(conn, rule(targets=["green-95"]))
    assert err.value.field == "targets.0"


@pytest.mark.parametrize(("patch", "field"), [
    ({"targets": []}, "targets"),
    ({"targets": ["green-85", "green-85"]}, "targets"),
    ({"statuses": []}, "statuses"),
    ({"statuses": ["on_track"]}, "statuses.0"),
    ({"statuses": ["off_track", "off_track"]}, "statuses"),
    ({"interval_s": 60}, "interval_s"),
    ({"scope": {"site_id": "zc-plant", "role": "grid_import"}}, "scope"),
])
def test_bad_target_rules_are_refused_naming_the_field(engineer: TestClient, patch: dict[str, Any],
                                                       field: str) -> None:
    r = engineer.post("/api/v1/alerts/rules", json={**BODY, **patch})
    assert r.status_code == 422
    # the API's location carries the union's tag (body.target_at_risk.…), as for every kind
    assert any(e["field"].endswith(f".{field}") for e in r.json()["errors"]), r.text
    with pytest.raises(RuleError) as err:
        parse_rule({**BODY, **patch})
    assert err.value.field == field


def test_a_site_without_a_programme_holds_with_a_note(db: str) -> None:
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('zc-plant', 'Bare plant')"))
    _, o = run(db, rule())
    assert o.measurement.observation.value is None and o.step.state.state == "ok"
    assert dict(o.measurement.details)[("说明", "note")] == (
        "站点零碳规划中没有所关注的目标", "none of the watched targets is in the site's programme")
