"""One KPI engine: every consumer of a site's energy and carbon gives the same numbers for the
same window — GET /kpis, GET /kpis/now, each alert rule that reads energy or carbon, the
dashboard tiles, the GHG inventory and energy balance, and the KPI series summed over the window.

The site has grid import and export, PV, a gas boiler, purchased heat, a production line, green
certificates and a green-power trade, a non-default factor set and a factor override. Its day is
2026-11-20 in Shenyang (Asia/Shanghai); the data runs 08:00–20:00 local and "now" is 22:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dashboard.controls import view_of
from dashboard.data import make_reader
from dashboard.page import PageQuery
from dashboard.pages import BY_PATH
from dashboard.refresh import refresh
from lingtan.core import reports
from lingtan.core.alerts.evaluate import Outcome, evaluate_rule
from lingtan.core.alerts.rules import parse_rule
from lingtan.core.kpi import WindowKpis, window_kpis
from lingtan.core.site_model import import_site_file
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from lingtan.kernel.settings import Settings
from tests.pipeline import store_readings

REL = 1e-9
SITE = "one"
TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 20)
MIDNIGHT = datetime(2026, 11, 20, tzinfo=TZ).astimezone(UTC)
DATA_START = datetime(2026, 11, 20, 8, tzinfo=TZ).astimezone(UTC)
NOW = datetime(2026, 11, 20, 22, tzinfo=TZ).astimezone(UTC)
MONTH_START = datetime(2026, 11, 1, tzinfo=TZ).astimezone(UTC)

SITE_FILE: dict[str, Any] = {
    "site": {"id": SITE, "name": "One-engine plant", "timezone": "Asia/Shanghai", "grid_region": "north_east",
             "factor_set": "mee-2022"},
    "energy": {"production_unit": "pcs"},
    "meters": [
        {"id": "grid", "role": "grid_import", "name": "Grid incomer"},
        {"id": "pv", "role": "pv_generation", "name": "Rooftop PV"},
        {"id": "boiler", "role": "boiler_fuel", "name": "Gas boiler", "params": {"fuel": "natural_gas"}},
        {"id": "heat", "role": "purchased_heat", "name": "District heat", "params": {"heat_carrier": "heat"}},
        {"id": "line", "role": "production", "name": "Line 1"},
    ],
    "green_power": [
        {"kind": "gec", "period_start": "2026-11-20", "period_end": "2026-11-21", "certificates": 0.36},
        {"kind": "trade", "period_start": "2026-11-20", "period_end": "2026-11-21", "kwh": 360},
    ],
    "factor_overrides": [
        {"kind": "co2", "subject": "natural_gas", "value": 20.0, "unit": "tCO2/10^4 Nm3",
         "source": "supplier gas analysis 2026", "valid_from": "2026-01-01"},
    ],
}


def counters(n: int) -> dict[tuple[str, str], float]:
    """Counter values n minutes after 08:00. Power, per 4-hour block of 08–12 / 12–16 / 16–20:
    grid import 120 / 0 / 240 kW, export 0 / 60 / 0 kW, PV 60 / 180 / 0 kW; all day gas 30 m³/h,
    purchased heat 0.6 GJ/h, production 120 pcs/h."""
    a, b, c = min(n, 240), min(max(n - 240, 0), 240), max(n - 480, 0)
    return {
        ("grid", "active_energy_import"): 10_000.0 + 2 * a + 4 * c,
        ("grid", "active_energy_export"): 500.0 + 1 * b,
        ("pv", "active_energy_export"): 3_000.0 + 1 * a + 3 * b,
        ("boiler", "gas_volume"): 1_000.0 + 0.5 * n,
        ("heat", "heat_energy"): 50.0 + 0.01 * n,
        ("line", "production_count"): 7.0 + 2 * n,
    }


@pytest.fixture
def site(api_db: str) -> str:
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, SITE_FILE)
    store_readings(api_db, [Reading(DATA_START + timedelta(minutes=n), meter, quantity, value)
                            for n in range(12 * 60 + 1) for (meter, quantity), value in counters(n).items()])
    return api_db


def same(a: float | None, b: float | None) -> None:
    assert a is not None and b is not None
    assert a == pytest.approx(b, rel=REL, abs=1e-12)


def rule_value(db: str, definition: dict[str, Any]) -> float | None:
    rule = parse_rule({"name": "r", "scope": {"site_id": SITE}, **definition})
    with get_engine(db).begin() as conn:
        rule_id = conn.execute(sa.text("INSERT INTO alert_rules (name, definition) VALUES ('r', '{}')"
                                       " RETURNING id")).scalar_one()
        outcomes: list[Outcome] = evaluate_rule(conn, rule_id, rule, Settings(database_url=db), NOW)
    [o] = outcomes
    return o.measurement.observation.value


def test_every_consumer_gives_the_same_figures(site: str, api_client: TestClient) -> None:
    db = site
    with get_engine(db).connect() as conn:
        k = window_kpis(conn, SITE, MIDNIGHT, NOW, NOW)
        month = window_kpis(conn, SITE, MONTH_START, NOW, NOW)
    e, c = k.electricity, k.carbon

    # --- the reference window, worked by hand -------------------------------------------------
    # import 4 h × 120 + 4 h × 240 = 1440 kWh; export 4 h × 60 = 240; PV 4 h × 60 + 4 h × 180 = 960
    same(e.grid_import_kwh.value, 1440.0)
    same(e.grid_export_kwh.value, 240.0)
    same(e.pv_generation_kwh.value, 960.0)
    same(e.consumption_kwh.value, 2160.0)            # 1440 − 240 + 960
    same(e.pv_self_consumed_kwh.value, 720.0)        # 960 − 240
    # purchases: 0.36 GEC = 360 kWh and a 360 kWh trade for the day, which still runs at 22:00: the
    # 22/24 of each its elapsed time has earned (330 kWh) is spread over the grid-supplied
    # consumption so far (2160 − 720 = 1440 kWh)
    same(e.green_certificate_kwh.value, 360.0 * 22 / 24)
    same(e.green_trade_kwh.value, 360.0 * 22 / 24)
    same(e.green_power_ratio.value, (720 + 660) / 2160)
    # factor set mee-2022: North-East grid 2022 data 0.5564, national residual mix 0.5856 kg/kWh
    # (MEE/NBS 2024-12-20); purchased heat 0.11 tCO2/GJ; gas by the site's override 20 tCO2/10⁴m³
    same(c.scope1_t.value, 360 * 20 / 1e4)                      # 12 h × 30 m³ = 360 m³ → 0.72 t
    same(c.scope2_location_t.value, 1440 * 0.5564 / 1000 + 7.2 * 0.11)       # 0.801216 + 0.792
    same(c.scope2_market_t.value, (1440 - 660) * 0.5856 / 1000 + 7.2 * 0.11)  # 0.456768 + 0.792
    same(c.intensity_location_kg_per_kwh.value, 1440 * 0.5564 / 2160)
    same(c.intensity_market_kg_per_kwh.value, (1440 - 660) * 0.5856 / 2160)
    # GB/T 2589-2020: 2160 kWh × 0.1229 + 360 m³ at the site's one heating value (38.931 MJ/Nm³ ÷
    # 29.3076 MJ/kgce) + 7.2 GJ × 0.03412 tce/GJ
    same(k.energy.tce_total.value, 2160 * 0.1229 / 1000 + 360 * 38.931 / 29.3076 / 1000 + 7.2 * 0.03412)
    same(k.energy.production.value, 1440.0)
    carbon_location = c.scope1_t.value + c.scope2_location_t.value  # type: ignore[operator]
    carbon_market = c.scope1_t.value + c.scope2_market_t.value  # type: ignore[operator]

    with clock.frozen(NOW):
        # --- GET /kpis, calendar day and explicit window ------------------------------------------
        for params in ({"period": "day", "date": DAY.isoformat()},
                       {"start": MIDNIGHT.isoformat(), "end": NOW.isoformat()}):
            r = api_client.get(f"/api/v1/sites/{SITE}/kpis", params=params)
            assert r.status_code == 200, r.text
            assert_same_window(r.json(), k)

        # --- GET /kpis/now: "today" is the window from local midnight, power now beside it ---------
        r = api_client.get(f"/api/v1/sites/{SITE}/kpis/now")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["today"]["start"].startswith("2026-11-19T16:00") and body["today"]["end"].startswith(
            "2026-11-20T14:00")
        assert_same_window(body["today"], k)
        assert set(body["power"]) == {"grid_kw", "pv_kw", "load_kw", "as_of"}

        # --- the KPI series, summed over the day, at every resolution -----------------------------
        for resolution in ("15m", "1h", "1d"):
            r = api_client.get(f"/api/v1/sites/{SITE}/kpis/series", params={
                "start": MIDNIGHT.isoformat(), "end": (MIDNIGHT + timedelta(days=1)).isoformat(),
                "resolution": resolution})
            assert r.status_code == 200, r.text
            points = r.json()["points"]

            def total(name: str, points: list[dict[str, Any]] = points) -> float:
                return sum(p[name] for p in points if p[name] is not None)

            assert total("unplaced_kwh") == 0.0  # no gaps: every kWh is placed in a bucket
            same(total("grid_import_kwh"), e.grid_import_kwh.value)
            same(total("grid_export_kwh"), e.grid_export_kwh.value)
            same(total("pv_kwh"), e.pv_generation_kwh.value)
            same(total("consumption_kwh"), e.consumption_kwh.value)
            same(total("green_kwh"), e.pv_self_consumed_kwh.value + e.green_trade_kwh.value  # type: ignore[operator]
                 + e.green_certificate_kwh.value)
            same(total("scope1_t"), c.scope1_t.value)
            same(total("scope2_location_t"), c.scope2_location_t.value)
            same(total("scope2_market_t"), c.scope2_market_t.value)
            same(total("production"), k.energy.production.value)

    # --- alert rules, evaluated at the pinned instant ---------------------------------------------
    # threshold on the rolling 24 h intensity: the last 24 h hold exactly the day's data
    same(rule_value(db, {"kind": "threshold", "metric": "carbon_intensity", "window_s": 86_400,
                         "threshold": 1.0}), c.intensity_location_kg_per_kwh.value)
    same(rule_value(db, {"kind": "threshold", "metric": "carbon_intensity", "window_s": 86_400,
                         "threshold": 1.0, "basis": "market"}), c.intensity_market_kg_per_kwh.value)
    # daily budgets, projected from 22 h to the whole day
    same(rule_value(db, {"kind": "budget", "metric": "energy_kwh", "period": "day", "budget": 1e6}),
         e.consumption_kwh.value * 24 / 22)  # type: ignore[operator]
    same(rule_value(db, {"kind": "budget", "metric": "co2_t", "period": "day", "budget": 1e6,
                         "projection": False}), carbon_location)
    # the month's budget: 1 Nov to now is 19 days 22 h = 478 h of the month's 720 h
    same(month.carbon.scope1_t.value + month.carbon.scope2_market_t.value, carbon_market)  # type: ignore[operator]
    same(rule_value(db, {"kind": "budget", "metric": "co2_t", "period": "month", "budget": 1e6,
                         "basis": "market"}), carbon_market * 720 / 478)
    same(rule_value(db, {"kind": "budget", "metric": "co2_t", "period": "month", "budget": 1e6}),
         carbon_location * 720 / 478)
    # deviation from baseline: today so far, and the rolling last 24 h (no earlier weeks: no baseline,
    # but the value observed is the window's consumption)
    same(rule_value(db, {"kind": "deviation", "window": "day_so_far", "margin": 0.2, "min_coverage": 0.1}),
         e.consumption_kwh.value)
    same(rule_value(db, {"kind": "deviation", "window_s": 86_400, "margin": 0.2, "min_coverage": 0.1}),
         e.consumption_kwh.value)

    # --- dashboard tiles, refreshed at the pinned instant -----------------------------------------
    for basis, carbon in (("location", carbon_location), ("market", carbon_market)):
        view = view_of(SITE, None, basis, None, None, SITE)
        out = refresh(BY_PATH["/"], make_reader(db), PageQuery(view, NOW))

        def tile(tile_id: str, out: dict[tuple[str, str], Any] = out) -> float:
            return float(out[(tile_id, "data-value")])

        same(tile("tile-today-kwh"), e.consumption_kwh.value)
        same(tile("tile-today-tco2"), carbon)
        same(tile("tile-today-tce"), k.energy.tce_total.value)
        same(tile("tile-green-ratio"), e.green_power_ratio.value * 100)  # type: ignore[operator]
        intensity = c.intensity_market_kg_per_kwh if basis == "market" else c.intensity_location_kg_per_kwh
        same(tile("tile-intensity-24h"), intensity.value)

    # --- reports for the month (all of its data is this day) --------------------------------------
    with get_engine(db).connect() as conn:
        inv = reports.ghg_inventory(conn, SITE, "month", DAY, NOW)
        balance = reports.energy_balance(conn, SITE, "month", DAY, NOW)
    same(inv.totals.scope1_t.value, c.scope1_t.value)
    same(inv.totals.scope2_location_t.value, c.scope2_location_t.value)
    same(inv.totals.scope2_market_t.value, c.scope2_market_t.value)
    same(inv.totals.total_location_t.value, carbon_location)
    same(inv.totals.total_market_t.value, carbon_market)
    same(inv.green_power.gec_kwh.value, e.green_certificate_kwh.value)
    same(inv.green_power.trade_kwh.value, e.green_trade_kwh.value)
    same(balance.total_tce.value, k.energy.tce_total.value)


def assert_same_window(got: dict[str, Any], k: WindowKpis) -> None:
    """A KPI window as the API serialised it against the engine's own result, figure by figure."""
    for group, figures in (("electricity", k.electricity), ("carbon", k.carbon), ("energy", k.energy)):
        for name, fig in vars(figures).items():
            if hasattr(fig, "value") and isinstance(fig.value, float):
                same(got[group][name]["value"], fig.value)
    assert [f["key"] for f in got["factors"]] == [f.key for f in k.factors]


def test_purchases_of_the_parts_of_a_day_add_up_to_the_day(site: str) -> None:
    """Green power is spread over grid-supplied consumption, so sub-windows add up to the day.

    Spread over consumption instead (2160 kWh), 08–12 would get 720 × 720/2160 = 240 kWh, 12–16
    720 × 480/2160 = 160 kWh that PV had already made green (capped to 0), 16–20 720 × 960/2160
    = 320 kWh: 560 kWh of the day's 720."""
    # A counter step belongs to the minute its second reading falls in (lingtan/core/energy.py rule 4):
    # the 11:59–12:00 step is 08–12's, so the parts are cut one minute after each block ends.
    local = lambda h, m=0: datetime(2026, 11, 20, h, m, tzinfo=TZ).astimezone(UTC)  # noqa: E731
    cuts = [(local(0), local(12, 1)), (local(12, 1), local(16, 1)), (local(16, 1), local(22))]
    with get_engine(site).connect() as conn:
        parts = [window_kpis(conn, SITE, a, b, NOW).electricity for a, b in cuts]
    same(parts[0].consumption_kwh.value, 720.0)
    same(parts[1].consumption_kwh.value, 480.0)
    same(parts[2].consumption_kwh.value, 960.0)
    # rate: the 660 green kWh earned by 22:00 (720 × 22/24) ÷ 1440 grid-supplied kWh so far
    rate = 720 * 22 / 24 / 1440
    green = [p.green_trade_kwh.value + p.green_certificate_kwh.value for p in parts]  # type: ignore[operator]
    same(green[0], rate * 480)   # 08–12: 480 kWh imported, PV all used on site
    assert green[1] == 0.0       # 12–16: PV covers it all (and exports), nothing to make green
    same(green[2], rate * 960)   # 16–20: 960 kWh imported
    same(sum(green), 660.0)


def test_an_import_only_incomer_is_not_a_gap_in_consumption(db: str) -> None:
    """A grid incomer without an export register never reports active_energy_export: that is no
    export, not missing data, so consumption (and the day's tile and site alerts that need its
    coverage) is fully covered."""
    with get_engine(db).begin() as conn:
        import_site_file(conn, {"site": {"id": SITE, "name": "Import only", "timezone": "Asia/Shanghai"},
                                "meters": [{"id": "grid", "role": "grid_import"}]})
    # 60 kW for the hour 08:00–09:00: 1 kWh a minute
    store_readings(db, [Reading(DATA_START + timedelta(minutes=n), "grid", "active_energy_import", 100.0 + n)
                        for n in range(61)])
    with get_engine(db).connect() as conn:
        # the hour's steps end 08:01–09:00, so the window runs to 09:01
        e = window_kpis(conn, SITE, DATA_START, DATA_START + timedelta(minutes=61), NOW).electricity
    same(e.consumption_kwh.value, 60.0)
    assert e.grid_export_kwh.value == 0.0
    # 60 covered minutes of 61 (the first reading opens the data, it closes no step)
    same(e.consumption_kwh.coverage, 60 / 61)
