"""Data-quality checks on stored readings: counter resets (from the 1-minute rollups' first and
last values, by lingtan.core.energy's halving rule) and frozen live values (min == max over the last T
while the meter keeps reporting, by lingtan.core.frozen's rule, which the gateway's STALE flag shares)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.config import parse_config
from gateway.validate import Validator
from lingtan.core.alerts.evaluate import Subject, evaluate_rule, measure
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Quality, Reading
from lingtan.kernel.settings import Settings
from tests.pipeline import store_readings

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")


def meters(db: str, *rows: tuple[str, str]) -> None:
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('s', 'S')"))
        for meter_id, params in rows:
            conn.execute(sa.text("INSERT INTO meters (id, site_id, name, role, params)"
                                 " VALUES (:m, 's', :m, 'load', CAST(:p AS jsonb))"),
                         {"m": meter_id, "p": params})


def run(db: str, definition: dict, at: datetime) -> dict:
    rule = parse_rule({"name": "dq", "scope": {"site_id": "s"}, "kind": "data_quality",
                       "recipients": [{"email": "en@example.com", "language": "en"},
                                      {"email": "zh@example.com", "language": "zh"}], **definition})
    with get_engine(db).begin() as conn:
        rule_id = conn.execute(sa.text("INSERT INTO alert_rules (name, definition) VALUES ('dq', '{}')"
                                       " RETURNING id")).scalar_one()
        out = evaluate_rule(conn, rule_id, rule, Settings(database_url=db), at)
    return {o.subject.key: o for o in out}


def kwh(meter: str, seconds: float, value: float) -> Reading:
    return Reading(T0 + timedelta(seconds=seconds), meter, "active_energy_import", value)


def seed_counters(db: str) -> None:
    meters(db, ("c1", "{}"), ("c2", "{}"), ("c3", '{"counter_wrap": 10000}'), ("c4", "{}"))
    rows = []
    for i in range(60):  # c1: read every minute, 1 kWh a minute
        if i == 20:
            v = 0.0  # a read error returning 0 for one sample: a dip, not a reset
        elif i < 35:
            v = 5000.0 + i
        else:
            v = 0.5 + (i - 35)  # meter replaced at minute 35: starts again near 0
        rows.append(kwh("c1", i * 60, v))
    for k in range(180):  # c2: read every 20 s; cleared at 00:20:20, inside minute 20
        rows.append(kwh("c2", k * 20, 7000.0 + k * 0.3 if k < 61 else 0.1 + (k - 61) * 0.3))
    for i in range(60):  # c3 wraps at 10000 (a rollover, counting on); c4 the same without a wrap
        v = (9950.0 + i * 10) % 10000
        rows += [kwh("c3", i * 60, v), kwh("c4", i * 60, v)]
    store_readings(db, rows)


def test_counter_resets_counted_from_the_rollups(db):
    seed_counters(db)
    check = {"check": "counter_reset", "window_s": 3600}
    out = run(db, check, T0 + timedelta(minutes=60))
    values = {k: o.measurement.observation.value for k, o in out.items()}
    # c1: the reset at minute 35 (the dip at minute 20 is back up the next minute); c2: the
    # reset inside minute 20; c3: a rollover with its wrap known; c4: the same drop to 0 without
    # a wrap is a reset (9990 → 0, at 00:05).
    assert values == {"meter:c1": 1, "meter:c2": 1, "meter:c3": 0, "meter:c4": 1}
    assert {k: o.step.state.state for k, o in out.items()} == {
        "meter:c1": "firing", "meter:c2": "firing", "meter:c3": "ok", "meter:c4": "firing"}
    assert ((("清零", "resets"), "2026-06-01 08:35: 5,034.00 → 0.50")
            in out["meter:c1"].measurement.details)  # shown in the site's time zone (UTC+8)
    assert ((("清零", "resets"), "2026-06-01 08:20: 7,018.00 → 0.40")
            in out["meter:c2"].measurement.details)
    en, zh = (m.mail.text for m in out["meter:c1"].messages)
    assert "Metric: counter resets" in en and "Current value: 1" in en
    assert "Window: last 60 min, active_energy_import" in en and "resets: 2026-06-01 08:35" in en
    assert "指标: 计数器清零次数" in zh
    assert "窗口: 过去 60 分钟, active_energy_import" in zh and "清零: 2026-06-01 08:35" in zh

    # The newest minute waits for the next to confirm it stays low: at 00:36 minute 35 is the
    # newest, at 00:37 it is confirmed.
    assert run(db, {**check, "scope": {"site_id": "s", "meter_id": "c1"}},
               T0 + timedelta(minutes=36))["meter:c1"].measurement.observation.value == 0
    assert run(db, {**check, "scope": {"site_id": "s", "meter_id": "c1"}},
               T0 + timedelta(minutes=37))["meter:c1"].measurement.observation.value == 1
    # The last 10 minutes hold no reset.
    later = run(db, {**check, "window_s": 600}, T0 + timedelta(minutes=60))
    assert later["meter:c1"].measurement.observation.value == 0


def test_a_recorded_meter_exchange_is_not_a_reset(db):
    seed_counters(db)
    # c1's replacement at minute 35 recorded on the meter (old counter 5034.5 at 00:34:30, new 0)
    swap = {"time": (T0 + timedelta(minutes=34, seconds=30)).isoformat(), "quantity": "active_energy_import",
            "old_final": 5034.5, "new_initial": 0.0}
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("UPDATE meters SET params = jsonb_build_object('exchanges', jsonb_build_array("
                             "CAST(:x AS jsonb))) WHERE id = 'c1'"), {"x": json.dumps(swap)})
    out = run(db, {"check": "counter_reset", "window_s": 3600}, T0 + timedelta(minutes=60))
    assert out["meter:c1"].measurement.observation.value == 0
    # the unrecorded clearing of c2 still is one
    assert out["meter:c2"].measurement.observation.value == 1


def power(meter: str, seconds: float, value: float) -> Reading:
    return Reading(T0 + timedelta(seconds=seconds), meter, "active_power", value)


def seed_power(db: str) -> None:
    meters(db, ("f1", "{}"), ("f2", "{}"), ("f3", "{}"), ("f4", "{}"))
    rows = []
    for k in range(181):  # every 30 s for 90 minutes
        t = k * 30
        # f1 moves until 00:30, then repeats 42.5 with fresh timestamps; f2 idles at exactly 0;
        # f3 repeats 7 but stops reporting at 01:00; f4 starts reporting 230 at 01:15.
        rows.append(power("f1", t, 10.0 + k % 3 if t < 1800 else 42.5))
        rows.append(power("f2", t, 0.0))
        if t < 3600:
            rows.append(power("f3", t, 7.0))
        if t >= 4500:
            rows.append(power("f4", t, 230.0))
    store_readings(db, rows)


def test_frozen_value_while_the_meter_keeps_reporting(db):
    seed_power(db)
    check = {"check": "frozen", "window_s": 1800}
    out = run(db, check, T0 + timedelta(minutes=90))
    obs = {k: o.measurement.observation for k, o in out.items()}
    # f1: the look-back is the window plus a minute (00:59–01:30), all of it at 42.5: 31 min > 30.
    assert obs["meter:f1"].value == pytest.approx(31.0) and obs["meter:f1"].breached
    assert ((("不变起始", "unchanged since"), "≤ 2026-06-01T00:59:00+00:00")
            in out["meter:f1"].measurement.details)
    # f2 idles at 0: not frozen. f3 stopped 30 minutes ago (fresh_s 300): the offline rule's
    # business, the state holds. f4 reports for 15 minutes only: unchanged 15 < 30.
    assert (obs["meter:f2"].value, obs["meter:f2"].breached) == (0.0, False)
    assert obs["meter:f3"].value is None and not obs["meter:f3"].breached
    assert obs["meter:f4"].value == pytest.approx(15.0) and not obs["meter:f4"].breached
    assert {k: o.step.state.state for k, o in out.items()} == {
        "meter:f1": "firing", "meter:f2": "ok", "meter:f3": "ok", "meter:f4": "ok"}
    en, zh = (m.mail.text for m in out["meter:f1"].messages)
    assert "Metric: time the value has not changed" in en and "Current value: 31 min" in en
    assert "value: 42.5" in en and "指标: 数值冻结时长" in zh
    # the rule's own words, each in the recipient's language
    assert "Window: active_power unchanged for over 30 min" in en
    assert "unchanged since: ≤ 2026-06-01T00:59:00+00:00" in en and not CJK.search(en)
    assert "窗口: active_power 超过 30 分钟不变" in zh
    assert "冻结值: 42.5" in zh and "不变起始: ≤ 2026-06-01T00:59:00+00:00" in zh

    # At 00:50 f1 has been still since 00:30 (minute 29 still moved): 20 min, not frozen.
    early = run(db, check, T0 + timedelta(minutes=50))["meter:f1"]
    assert early.measurement.observation.value == pytest.approx(20.0)
    assert ((("不变起始", "unchanged since"), "2026-06-01T00:30:00+00:00") in early.measurement.details)
    assert early.step.state.state == "ok"
    # Counters are not live quantities: refused by the schema (see test_new_rule_validation).


def test_the_gateway_and_the_alert_judge_a_frozen_value_alike(db):
    """One frozen rule (lingtan.core.frozen): the gateway's STALE flag on each reading, and the
    frozen-value alert evaluated just after that reading arrived, say the same of every reading."""
    meters(db, ("z1", "{}"))
    limit = 330  # seconds; readings a minute apart never sit exactly on it
    values = ([10.0 + k % 3 for k in range(10)] + [42.5] * 15 + [11.0, 12.0] + [0.0] * 15
              + [7.25] * 12)
    cfg = parse_config(f"""
gateway: {{id: gw, site: s}}
devices:
  - id: z1
    protocol: modbus-tcp
    host: 10.0.0.1
    stale_after: {limit}s
    points:
      - {{quantity: active_power, address: 0, datatype: float32, unit: kW}}
""")
    validator = Validator(cfg.devices)
    # stored as the gateway passes them on, flags and all
    readings = [validator.check([power("z1", 60 * k, v)])[0] for k, v in enumerate(values)]
    store_readings(db, readings)
    flagged = [bool(r.quality & Quality.STALE) for r in readings]

    rule = parse_rule({"name": "dq", "scope": {"site_id": "s", "meter_id": "z1"}, "kind": "data_quality",
                       "check": "frozen", "window_s": limit})
    subject = Subject("meter:z1", "s", "z1")
    with get_engine(db).connect() as conn:
        alerted = [measure(conn, rule, subject, r.time + timedelta(seconds=1)).observation.breached
                   for r in readings]
    assert alerted == flagged
    # frozen at 42.5 from its 7th minute on, not while idle at 0, frozen again at 7.25
    assert flagged == ([False] * 10 + [False] * 6 + [True] * 9 + [False] * 2 + [False] * 15
                       + [False] * 6 + [True] * 6)
