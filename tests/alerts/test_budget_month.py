"""The monthly carbon budget: Scope 2 (location-based) CO2 of the month so far, projected over the
whole month, against the budget — numbers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from lingtan.core.alerts.evaluate import evaluate_rule
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from lingtan.kernel.settings import Settings
from tests.pipeline import store_readings

SHANGHAI = ZoneInfo("Asia/Shanghai")
JUNE = datetime(2026, 6, 1, tzinfo=SHANGHAI).astimezone(UTC)  # local midnight, 1 June (30 days)
# National grid average, 2023 data (docs/domain.md): the site's default region and factor.
FACTOR = 0.5306  # kgCO2/kWh


def seed(db: str) -> None:
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name, timezone, grid_region)"
                             " VALUES ('s', 'S', 'Asia/Shanghai', 'national')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name, role)"
                             " VALUES ('g', 's', 'g', 'grid_import')"))
    # The grid import counter read every 5 minutes at 125 kWh/h, from 23:55 on 31 May (so the
    # month's first pair ends at 00:00) until 00:00 on 3 June.
    step = 125.0 / 12
    rows = [Reading(JUNE + timedelta(minutes=5 * i), "g", "active_energy_import", 10_000.0 + i * step)
            for i in range(-1, 2 * 288 + 1)]
    store_readings(db, rows)


def run(db: str, definition: dict, at: datetime) -> list:
    rule = parse_rule({"name": "co2", "scope": {"site_id": "s"}, "kind": "budget", "metric": "co2_t",
                       "period": "month", "recipients": [{"email": "e@example.com", "language": "en"},
                                                         {"email": "z@example.com", "language": "zh"}],
                       **definition})
    with get_engine(db).begin() as conn:
        rule_id = conn.execute(sa.text("INSERT INTO alert_rules (name, definition) VALUES ('co2', '{}')"
                                       " RETURNING id")).scalar_one()
        return evaluate_rule(conn, rule_id, rule, Settings(database_url=db), at)


def test_monthly_co2_budget_projects_two_days_over_the_month(db):
    seed(db)
    at = JUNE + timedelta(days=2)  # 00:00 on 3 June: 48 h of 720
    # So far: 48 h × 125 kWh = 6000 kWh × 0.5306 kg/kWh = 3183.6 kg = 3.1836 t.
    # Projected: 3.1836 t × 30 days / 2 days = 47.754 t; warn at 0.9 × 50 t = 45 t: fires.
    [o] = run(db, {"budget": 50, "warn_at": 0.9}, at)
    assert o.measurement.observation.value == pytest.approx(6000 * FACTOR / 1000 * 30 / 2)
    assert o.measurement.observation.value == pytest.approx(47.754)
    assert o.measurement.condition.threshold == pytest.approx(45.0)
    assert o.step.notice == "firing"
    details = dict(o.measurement.details)
    assert details[("截至目前", "so far")] == "3.2 tCO2" and details[("预计", "projected")] == "47.8 tCO2"
    assert o.measurement.window == ("本月, 预计全期", "this month, projected for the period")
    en, zh = (m.mail.text for m in o.messages)
    assert "Metric: CO2 emissions" in en and "Current value: 47.754 tCO2" in en and "> 45 tCO2" in en
    assert "指标: 碳排放" in zh and "窗口: 本月, 预计全期" in zh

    # The full budget (50 t) is not reached by the projection; nor is 45 t by the total so far.
    [o] = run(db, {"budget": 50}, at)
    assert o.step.state.state == "ok"
    [o] = run(db, {"budget": 50, "warn_at": 0.9, "projection": False}, at)
    assert o.measurement.observation.value == pytest.approx(3.1836) and o.step.state.state == "ok"


def test_monthly_co2_budget_uses_the_total_so_far_in_the_first_hour(db):
    seed(db)
    # 00:30 on 1 June: 6 pairs × 125/12 kWh = 62.5 kWh × 0.5306 = 33.1625 kg; half an hour is less
    # than min_elapsed_s (1 h), so it is not multiplied up to the month (it would be 47.754 t).
    [o] = run(db, {"budget": 0.03}, JUNE + timedelta(minutes=30))
    assert o.measurement.observation.value == pytest.approx(0.0331625)
    assert o.measurement.window[1] == "this month, so far"
    assert o.step.state.state == "firing"  # 0.0332 t > 0.03 t
