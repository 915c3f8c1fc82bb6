"""Deviation from baseline: energy over a window against the mean of the same window on the same
weekday over the last weeks (site time zone), firing above baseline × (1 + margin). Weeks without
(enough) data are left out of the mean; with no baseline week the rule does not fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from lingtan.core.alerts.evaluate import evaluate_rule, weeks_back
from lingtan.core.alerts.mail import render
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from lingtan.kernel.settings import Settings
from tests.pipeline import store_readings

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Monday 29 June 2026, 10:00 in Shanghai; the baseline Mondays are 1, 8, 15 and 22 June.
NOW = datetime(2026, 6, 29, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)


def seed(db: str) -> None:
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name, timezone) VALUES ('s', 'S', 'Asia/Shanghai')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name, role) VALUES"
                             " ('g', 's', 'grid', 'grid_import'), ('l1', 's', 'l1', 'load'),"
                             " ('l2', 's', 'l2', 'load')"))


def counter(meter: str, day: int, first: tuple[int, int], last: tuple[int, int], kwh_per_h: float,
            base: float) -> list[Reading]:
    """A kWh counter read every minute on a June day, local times first..last inclusive."""
    t = datetime(2026, 6, day, *first, tzinfo=SHANGHAI)
    end = datetime(2026, 6, day, *last, tzinfo=SHANGHAI)
    rows, i = [], 0
    while t <= end:
        rows.append(Reading(t.astimezone(UTC), meter, "active_energy_import", base + i * kwh_per_h / 60))
        t += timedelta(minutes=1)
        i += 1
    return rows


def run(db: str, definition: dict, at: datetime = NOW) -> list:
    rule = parse_rule({"name": "dev", "scope": {"site_id": "s"}, "recipients": [
        {"email": "zh@example.com", "language": "zh"}, {"email": "en@example.com", "language": "en"}],
        **definition})
    with get_engine(db).begin() as conn:
        rule_id = conn.execute(sa.text("INSERT INTO alert_rules (name, definition) VALUES ('dev', '{}')"
                                       " RETURNING id")).scalar_one()
        return evaluate_rule(conn, rule_id, rule, Settings(database_url=db), at)


def test_last_hour_of_site_energy_against_the_mean_of_earlier_mondays(db):
    seed(db)
    rows = []
    # The 09:00–10:00 window of each Monday, read from 08:55 so its first minute has a pair:
    # 100, 120 and 140 kWh on 1, 15 and 22 June; today 150 kWh.
    for day, rate in ((1, 100.0), (15, 120.0), (22, 140.0), (29, 150.0)):
        rows += counter("g", day, (8, 55), (10, 5), rate, base=day * 10_000.0)
    # 8 June: only 09:00–09:20 recorded, at 600 kWh/h. A third of the window is covered
    # (below min_coverage 0.5), so the week is left out; counted, it would lift the mean.
    rows += counter("g", 8, (9, 0), (9, 20), 600.0, base=80_000.0)
    store_readings(db, rows)

    # Baseline (100 + 120 + 140) / 3 = 120 kWh; × 1.2 = 144 < 150: fires.
    [o] = run(db, {"kind": "deviation", "margin": 0.2})
    m = o.measurement
    assert o.subject.key == "site:s"
    assert m.observation.value == pytest.approx(150.0)
    assert m.condition.threshold == pytest.approx(144.0)
    assert o.step.state.state == "firing" and o.step.notice == "firing"
    details = {k[1]: v for k, v in m.details}
    assert details["baseline"] == "120.0 kWh (3/4)"
    assert details["same window, earlier weeks"] == (
        "2026-06-01: 100.0 kWh; 2026-06-08: —; 2026-06-15: 120.0 kWh; 2026-06-22: 140.0 kWh")
    # The chart: the baseline weeks, then today.
    assert m.series == pytest.approx([100.0, 120.0, 140.0, 150.0])
    zh, en = (msg.mail for msg in o.messages)
    assert "用电量（对比同期基线）" in zh.text and "基线: 120.0 kWh (3/4)" in zh.text
    assert "electricity use against its baseline" in en.text and "Threshold: > 144.0 kWh" in en.text

    # × 1.3 = 156 > 150: does not fire.
    [o] = run(db, {"kind": "deviation", "margin": 0.3})
    assert o.measurement.condition.threshold == pytest.approx(156.0) and o.step.state.state == "ok"
    # With one baseline week only (22 June), the threshold is 140 × 1.05 = 147 < 150.
    [o] = run(db, {"kind": "deviation", "margin": 0.05, "weeks": 1})
    assert o.measurement.condition.threshold == pytest.approx(147.0) and o.step.state.state == "firing"


def test_day_so_far_of_a_meter_and_no_baseline_does_not_fire(db):
    seed(db)
    at = datetime(2026, 6, 29, 2, 0, tzinfo=SHANGHAI).astimezone(UTC)
    # l1: 00:00–02:00 on 22 June at 10 kWh/h (20 kWh), today at 11 kWh/h (22 kWh); read from
    # 23:58 the day before so midnight's first minute has a pair. l2 reports only today.
    rows = counter("l1", 21, (23, 58), (23, 59), 10.0, base=1000.0 - 2 * 10.0 / 60)
    rows += counter("l1", 22, (0, 0), (2, 5), 10.0, base=1000.0)
    rows += counter("l1", 28, (23, 58), (23, 59), 11.0, base=5000.0 - 2 * 11.0 / 60)
    rows += counter("l1", 29, (0, 0), (2, 5), 11.0, base=5000.0)
    rows += counter("l2", 29, (0, 0), (2, 5), 50.0, base=0.0)
    store_readings(db, rows)

    out = run(db, {"kind": "deviation", "margin": 0.05, "window": "day_so_far",
                   "scope": {"site_id": "s", "role": "load"}}, at)
    by = {o.subject.key: o for o in out}
    l1, l2 = by["meter:l1"], by["meter:l2"]
    # Baseline 20 kWh (one week of four), × 1.05 = 21 < 22.
    assert l1.measurement.observation.value == pytest.approx(22.0)
    assert l1.measurement.condition.threshold == pytest.approx(21.0)
    assert l1.step.state.state == "firing"
    # l2 has today's energy (from its first pair at 00:01: 119 minutes × 50/60 kWh) but no
    # earlier Monday at all: no baseline, no breach, and the measurement says why.
    assert l2.measurement.observation.value == pytest.approx(119 * 50 / 60)
    assert not l2.measurement.observation.breached and not l2.measurement.observation.recovered
    assert l2.step.state.state == "ok" and l2.messages == []
    baseline = dict(l2.measurement.details)[("基线", "baseline")]
    assert baseline[1].startswith("no baseline: none of the last 4 weeks has data")
    assert baseline[0].startswith("无基线")


def test_no_baseline_is_said_in_both_languages_in_the_mail_text():
    # The note is a (zh, en) pair; each recipient reads it in their language.
    from lingtan.core.alerts.mail import Notification

    note = Notification(notice="firing", rule_id=1, rule_name="r", severity="info", subject="meter:l2",
                        metric="deviation_kwh", unit="kWh", value=5.0, threshold=float("inf"), op=">",
                        window=("今日零点至今", "today since local midnight"), time=NOW,
                        timezone="Asia/Shanghai", dashboard_url="http://d/",
                        details=((("基线", "baseline"), ("无基线", "no baseline")),))
    assert "基线: 无基线" in render(note, "zh").text and "阈值: > 无数据" in render(note, "zh").text
    assert "baseline: no baseline" in render(note, "en").text


def test_weeks_back_keeps_the_local_wall_time_across_daylight_saving():
    berlin = ZoneInfo("Europe/Berlin")
    # Wednesday 1 April 2026 10:00 CEST (UTC+2); a week earlier is 25 March 10:00 CET (UTC+1).
    t = datetime(2026, 4, 1, 10, 0, tzinfo=berlin).astimezone(UTC)
    assert weeks_back(t, 1, "Europe/Berlin") == datetime(2026, 3, 25, 9, 0, tzinfo=UTC)
    assert weeks_back(t, 4, "Asia/Shanghai") == t - timedelta(weeks=4)
