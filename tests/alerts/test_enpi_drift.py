"""The enpi_drift rule on the synthetic M&V plant of tests/api/test_savings.py.

That data (days 0–179, 1 March – 27 August 2026) follows energy = A + B·production + C·HDD + noise,
with a saving after day 110: the baseline "air" (days 0–99) is adequate and its later points show
savings. Five more days are stored here with no noise:

    day  date        production  temperature  HDD  truth = 400 + 2·p + 15·HDD   stored
    180  2026-08-28  250         5            13   1095                         × 1.3
    181  2026-08-29  300         10           8    1120                         × 1.3
    182  2026-08-30  350         15           3    1145                         × 1.3
    183  2026-08-31  300         10           8    1120                         × 1.3
    184  2026-09-01  300         10           8    1120                         × 1.0

The model's expected energy is the truth within its coefficient error (about 1 %), so at 1 September
10:00 (days up to 31 August complete) the last three days exceed expected by about 30 %, and at
2 September 10:00 the last day (1 September) is back at expected. Figures come from
savings_service.baseline, never recomputed here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lingtan.core import savings_service
from lingtan.core.alerts import store
from lingtan.core.alerts.evaluate import Outcome, evaluate_rule
from lingtan.core.alerts.rules import EnpiDriftRule, RuleError, parse_rule
from lingtan.core.site_model import import_site_file
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from lingtan.kernel.settings import Settings
from tests.api.test_savings import DAYS, SITE_FILE, TZ, A, B, C, day, readings
from tests.pipeline import store_readings_once

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=ZoneInfo(TZ))  # 31 August has ended
LATER = NOW + timedelta(days=1)  # 1 September has ended
EXTRA = [(250.0, 5.0, 1.3), (300.0, 10.0, 1.3), (350.0, 15.0, 1.3), (300.0, 10.0, 1.3), (300.0, 10.0, 1.0)]


def truth(production: float, temperature: float) -> float:
    return A + B * production + C * max(18.0 - temperature, 0.0)


def extra_readings(base: list[Reading]) -> list[Reading]:
    """The days of EXTRA after the test module's data, its counters carried on."""
    e = next(r.value for r in reversed(base) if r.meter_id == "comp1")
    p = next(r.value for r in reversed(base) if r.meter_id == "prod")
    zone = ZoneInfo(TZ)
    out: list[Reading] = []
    for k, (production, temp, factor) in enumerate(EXTRA):
        d = day(DAYS + k)
        energy = factor * truth(production, temp)
        midnight = datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)
        for q in range(96):
            t = midnight + timedelta(minutes=15 * q)
            if q > 0:  # as in the module's readings(): a day's energy lands after its 00:00 reading
                e += energy / 95
                p += production / 95
            out += [Reading(t, "comp1", "active_energy_import", e),
                    Reading(t, "grid", "active_energy_import", e),
                    Reading(t, "prod", "production_count", p), Reading(t, "outdoor", "temperature", temp)]
    return out


def site_file() -> dict[str, Any]:
    data = copy.deepcopy(SITE_FILE)
    data["energy_baselines"][0]["name"] = "Compressed air"
    # energy against a number unrelated to it: a model that fails the adequacy rules
    data["energy_baselines"].append({
        "id": "lunar", "boundary": {"meters": ["comp1"]},
        "baseline": {"start": "2026-03-01", "end": "2026-06-08"},
        "variables": [{"name": "lunar", "source": "entered",
                       "values": [{"date": day(i).isoformat(), "value": float((i * 37) % 11)}
                                  for i in range(DAYS + len(EXTRA))]}]})
    data["energy_baselines"].append({**copy.deepcopy(data["energy_baselines"][0]), "id": "air-weekly",
                                     "resolution": "week"})
    return data


@pytest.fixture
def plant(api_db: str) -> str:
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, site_file())
    store_readings_once(api_db, "mv-plant-drift", lambda: (base := readings()) + extra_readings(base))
    return api_db


def rule(**params: Any) -> EnpiDriftRule:
    r = parse_rule({"kind": "enpi_drift", "name": "Air over baseline", "scope": {"site_id": "mv-plant"},
                    "baseline": "air", "recipients": [{"email": "energy@example.com", "language": "en"},
                                                      {"email": "nengyuan@example.com", "language": "zh"}],
                    **params})
    assert isinstance(r, EnpiDriftRule)
    return r


def run(db: str, r: EnpiDriftRule, at: datetime = NOW) -> tuple[int, Outcome]:
    with get_engine(db).begin() as conn:
        rule_id = store.create_rule(conn, r)
        [o] = evaluate_rule(conn, rule_id, r, Settings(database_url=db), at)
    return rule_id, o


def details(o: Outcome) -> dict[str, Any]:
    return {en: v for (_, en), v in o.measurement.details}


def test_three_days_30_percent_over_fire_and_the_mail_names_them(plant: str) -> None:
    with get_engine(plant).begin() as conn:
        answer = savings_service.baseline(conn, "mv-plant", "air", NOW)
    last = answer.since[-3:]
    assert [p.label for p in last] == ["2026-08-29", "2026-08-30", "2026-08-31"]
    for p, truth_kwh in zip(last, (1120.0, 1145.0, 1120.0), strict=True):
        assert p.actual == pytest.approx(1.3 * truth_kwh, rel=1e-6)
        assert p.expected == pytest.approx(truth_kwh, rel=0.02)  # the model's coefficient error
    excess = [(p.actual / p.expected - 1) * 100 for p in last]

    _, o = run(plant, rule())
    assert o.subject.key == "site:mv-plant"
    assert o.measurement.observation.value == pytest.approx(min(excess), abs=1e-9)
    assert min(excess) > 25 and o.measurement.condition.threshold == 10.0
    assert o.step.notice == "firing" and o.step.state.state == "firing"
    d = details(o)
    assert d["energy baseline"] == "Compressed air (air)"
    assert list(d)[2:] == ["2026-08-29", "2026-08-30", "2026-08-31"]
    en = o.messages[0].mail
    assert en.subject == ("[Lingtan FIRING] Air over baseline — Compressed air: over expected by more than "
                          "10% on each of the last 3 days (2026-08-29 – 2026-08-31)")
    p = last[0]
    assert (f"2026-08-29: actual {p.actual:,.1f} kWh against expected {p.expected:,.1f} kWh "
            f"({excess[0]:+.1f}%)") in en.text
    assert "2026-08-28" not in en.text  # only the last three days
    zh = o.messages[1].mail
    assert zh.subject.endswith("Compressed air：最近 3 天每天均超出预期 10% 以上（2026-08-29 – 2026-08-31）")
    assert f"2026-08-31: 实际 {last[2].actual:,.1f} kWh，预期 {last[2].expected:,.1f} kWh" in zh.text


def test_an_excess_of_50_percent_is_not_reached(plant: str) -> None:
    _, o = run(plant, rule(excess_pct=50))
    assert 25 < (o.measurement.observation.value or 0) < 50
    assert o.step.state.state == "ok" and o.step.notice is None and not o.messages


def test_four_days_do_not_fire_when_one_of_them_saved_energy(plant: str) -> None:
    # day 180 (28 August) is 30 % over as well; five days reach back to 27 August, a saving day
    _, four = run(plant, rule(days=4))
    assert four.step.notice == "firing"
    _, five = run(plant, rule(days=5))
    assert (five.measurement.observation.value or 0) < 0 and five.step.state.state == "ok"


def test_it_resolves_when_a_day_is_back_at_expected(plant: str) -> None:
    rule_id, first = run(plant, rule())
    assert first.step.notice == "firing"
    r = rule()
    with get_engine(plant).begin() as conn:
        [o] = evaluate_rule(conn, rule_id, r, Settings(database_url=plant), LATER)
    assert abs(o.measurement.observation.value or 99) < 2  # 1 September: at expected, within the model error
    assert o.step.transition == "resolved" and o.step.notice == "resolved"
    assert o.messages[0].mail.subject == (
        "[Lingtan RESOLVED] Air over baseline — Compressed air: not over expected by more than 10% on each "
        "of the last 3 days (2026-08-30 – 2026-09-01)")


def test_more_days_than_points_hold_with_a_note(plant: str) -> None:
    # 9 June – 31 August: 84 complete days after the baseline period
    _, o = run(plant, rule(days=100))
    assert o.measurement.observation.value is None and o.step.state.state == "ok" and not o.messages
    assert details(o)["note"] == ("基准期之后仅有 84 个完整日，规则需要 100 个",
                                  "only 84 complete days after the baseline period; the rule needs 100")


def test_an_inadequate_model_holds_naming_the_failed_criteria(plant: str) -> None:
    _, o = run(plant, rule(baseline="lunar"))
    assert o.measurement.observation.value is None and o.step.state.state == "ok"
    note = details(o)["note"][1]
    assert note.startswith("the baseline model is not adequate (fails ") and "R² ≥ 0.5" in note


def test_a_firing_alert_holds_when_its_baseline_is_removed(plant: str) -> None:
    rule_id, first = run(plant, rule())
    assert first.step.state.state == "firing"
    with get_engine(plant).begin() as conn:
        doc = savings_service.load_savings(conn, "mv-plant")
        doc.energy_baselines = [b for b in doc.energy_baselines if b.id != "air"]
        savings_service.save_savings(conn, "mv-plant", doc, "test", NOW)
        [o] = evaluate_rule(conn, rule_id, rule(), Settings(database_url=plant), NOW + timedelta(hours=1))
    assert o.measurement.observation.value is None
    assert o.step.state.state == "firing" and o.step.notice is None
    assert details(o)["note"][1] == "energy baseline air is no longer in the site's savings document"


def test_the_store_refuses_an_unknown_or_weekly_baseline(plant: str) -> None:
    with get_engine(plant).begin() as conn:
        with pytest.raises(RuleError) as err:
            store.create_rule(conn, rule(baseline="steam"))
        assert err.value.field == "baseline"
        assert "'steam'" in err.value.message and "air, lunar, air-weekly" in err.value.message
        with pytest.raises(RuleError) as err:
            store.create_rule(conn, rule(baseline="air-weekly"))
        assert err.value.field == "baseline" and "resolution day" in err.value.message


# --- the API ----------------------------------------------------------------------------------------

BODY = {"kind": "enpi_drift", "name": "Air", "scope": {"site_id": "mv-plant"}, "baseline": "air",
        "recipients": [{"email": "energy@example.com"}]}


@pytest.fixture
def engineer(api_db: str, auth_headers: Callable[..., dict[str, str]]) -> TestClient:
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, site_file())
    return TestClient(create_app(), headers=auth_headers("engineer"))


def test_the_api_stores_the_kind_with_its_defaults(engineer: TestClient) -> None:
    r = engineer.post("/api/v1/alerts/rules", json=BODY)
    assert r.status_code == 201, r.text
    d = r.json()["definition"]
    assert (d["kind"], d["baseline"], d["excess_pct"], d["days"], d["interval_s"]) == (
        "enpi_drift", "air", 10.0, 3, 3600)


def test_an_unknown_baseline_is_refused_naming_the_field(engineer: TestClient) -> None:
    r = engineer.post("/api/v1/alerts/rules", json={**BODY, "baseline": "steam"})
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "body.baseline" and "'steam'" in error["message"]
    # the same check when a rule is replaced
    rule_id = engineer.post("/api/v1/alerts/rules", json=BODY).json()["id"]
    r = engineer.put(f"/api/v1/alerts/rules/{rule_id}", json={**BODY, "baseline": "steam"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.baseline"


@pytest.mark.parametrize(("patch", "field"), [
    ({"baseline": None}, "baseline"),
    ({"excess_pct": 0}, "excess_pct"),
    ({"days": 0}, "days"),
    ({"interval_s": 60}, "interval_s"),
    ({"scope": {"site_id": "mv-plant", "meter_id": "comp1"}}, "scope"),
])
def test_bad_drift_rules_are_refused_naming_the_field(patch: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**BODY, **patch}.items() if v is not None}
    with pytest.raises(RuleError) as err:
        parse_rule(body)
    assert err.value.field == field
