"""Rule measurements over stored readings: rolling site and meter power, carbon intensity and the
daily energy budget with its projection, each against numbers worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from lingtan.core.alerts.evaluate import evaluate_rule
from lingtan.core.alerts.rules import parse_rule
from lingtan.core.factors import grid_factor
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

# Local midnight in Shanghai (UTC+8) on a Monday.
MIDNIGHT = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(hours=8)


def seed(db: str) -> None:
    with get_engine(db).begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name, timezone) VALUES ('s', 'S', 'Asia/Shanghai')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name, role) VALUES"
                             " ('g', 's', 'grid', 'grid_import'), ('l1', 's', 'l1', 'load'),"
                             " ('l2', 's', 'l2', 'load')"))
    rows = []
    # From an hour before midnight, so the day's first minute has a counter pair to count.
    for i in range(-60, 7 * 60 + 1):
        t = MIDNIGHT + timedelta(minutes=i)
        kw = 80.0 if i < 6 * 60 else 150.0  # a step at 06:00 local
        rows.append(Reading(t, "g", "active_power", kw))
        # 100 kWh an hour until 06:00 (the counter is what the budget reads).
        rows.append(Reading(t, "g", "active_energy_import", 1000.0 + min(i, 360) * 100.0 / 60.0
                            + max(0, i - 360) * 150.0 / 60.0))
        rows.append(Reading(t, "l1", "active_power", 10.0 + i % 2))  # averages 10.5
        rows.append(Reading(t, "l2", "active_power", 40.0))
    store_readings(db, rows)


def run(db: str, definition: dict, at: datetime) -> list:
    from lingtan.kernel.settings import Settings

    rule = parse_rule({"name": "r", "scope": {"site_id": "s"}, **definition})
    with get_engine(db).begin() as conn:
        rule_id = conn.execute(sa.text("INSERT INTO alert_rules (name, definition) VALUES ('r', '{}')"
                                       " RETURNING id")).scalar_one()
        return evaluate_rule(conn, rule_id, rule, Settings(database_url=db), at)


def test_site_power_is_the_15_minute_mean_of_the_load(db):
    seed(db)
    power = {"kind": "threshold", "metric": "power_kw", "threshold": 100}
    # At 06:10 the last 15 minutes hold 5 minutes at 80 kW and 10 at 150 kW.
    [o] = run(db, power, MIDNIGHT + timedelta(hours=6, minutes=10))
    assert o.subject.key == "site:s"
    assert o.measurement.observation.value == pytest.approx((5 * 80 + 10 * 150) / 15)
    assert o.step.state.state == "firing"
    [o] = run(db, power, MIDNIGHT + timedelta(hours=5))
    assert o.measurement.observation.value == pytest.approx(80) and o.step.state.state == "ok"
    # An hour of the series is charted in the e-mail.
    assert len(o.measurement.series) == 60


def test_role_scope_measures_each_meter(db):
    seed(db)
    out = run(db, {"kind": "threshold", "metric": "power_kw", "threshold": 20, "window_s": 600,
                   "scope": {"site_id": "s", "role": "load"}}, MIDNIGHT + timedelta(hours=2))
    values = {o.subject.key: (o.measurement.observation.value, o.step.state.state) for o in out}
    assert values == {"meter:l1": (pytest.approx(10.5), "ok"), "meter:l2": (pytest.approx(40.0), "firing")}


def test_carbon_intensity_of_grid_only_power_is_the_grid_factor(db):
    seed(db)
    [o] = run(db, {"kind": "threshold", "metric": "carbon_intensity", "threshold": 0.5, "window_s": 3600},
              MIDNIGHT + timedelta(hours=3))
    assert o.measurement.observation.value == pytest.approx(grid_factor("national").value)
    assert o.step.state.state == ("firing" if grid_factor("national").value > 0.5 else "ok")


def test_daily_budget_projects_the_day_from_the_hours_so_far(db):
    seed(db)
    at = MIDNIGHT + timedelta(hours=6)  # 600 kWh so far, a quarter of the day gone
    budget = {"kind": "budget", "metric": "energy_kwh", "period": "day", "budget": 2000}
    [o] = run(db, budget, at)
    assert o.measurement.observation.value == pytest.approx(2400)
    assert o.step.state.state == "firing"
    assert ((("截至目前", "so far"), "600.0 kWh")) in o.measurement.details
    [o] = run(db, {**budget, "projection": False}, at)
    assert o.measurement.observation.value == pytest.approx(600) and o.step.state.state == "ok"
    # In the first hour the projection would be noise: the total so far is compared instead.
    [o] = run(db, budget, MIDNIGHT + timedelta(minutes=30))
    assert o.measurement.observation.value == pytest.approx(50)
