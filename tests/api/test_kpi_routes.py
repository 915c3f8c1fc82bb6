"""The KPI routes over HTTP: window choice, calendar periods, series, and errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from fastapi.testclient import TestClient

from lingtan.core.site_model import import_site_file
from lingtan.kernel.db import get_engine
from tests.dashboard.seed import GRID_METER, PV_METER, SITE_ID, seed_demo_plant

END = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # noon in Shenyang


@pytest.fixture
def seeded(api_db: str, api_client: TestClient) -> TestClient:
    seed_demo_plant(api_db, end=END, hours=3, step_s=30, gap_minutes=0)
    site = {"site": {"id": SITE_ID, "name": "Demo", "timezone": "Asia/Shanghai", "grid_region": "north_east",
                     "factor_set": "mee-2023"},
            "meters": [{"id": GRID_METER, "role": "grid_import"}, {"id": PV_METER, "role": "pv_generation"}],
            "green_power": [{"kind": "gec", "period_start": "2026-11-20", "period_end": "2026-11-21",
                             "certificates": 0.1}]}
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, yaml.safe_load(yaml.safe_dump(site)))
    return api_client


def test_rolling_window_and_explicit_window_agree(seeded: TestClient):
    end = END.isoformat()
    rolling = seeded.get(f"/api/v1/sites/{SITE_ID}/kpis", params={"window": "1h", "end": end})
    assert rolling.status_code == 200, rolling.text
    explicit = seeded.get(f"/api/v1/sites/{SITE_ID}/kpis",
                          params={"start": (END - timedelta(hours=1)).isoformat(), "end": end})
    a, b = rolling.json(), explicit.json()
    assert a["electricity"] == b["electricity"]
    e = a["electricity"]
    # seed: grid 420 kW ± 60 and PV 180 kW ± 70 → an hour is a few hundred kWh of each
    assert 300 < e["grid_import_kwh"]["value"] < 550 and 100 < e["pv_generation_kwh"]["value"] < 260
    assert e["consumption_kwh"]["value"] == pytest.approx(
        e["grid_import_kwh"]["value"] - e["grid_export_kwh"]["value"] + e["pv_generation_kwh"]["value"])
    assert e["consumption_kwh"]["coverage"] > 0.99
    # location-based Scope 2 with the 2023 North-East factor, and the factor named with its source
    assert a["carbon"]["scope2_location_t"]["value"] == pytest.approx(
        e["grid_import_kwh"]["value"] * 0.5122 / 1000)
    grid = [f for f in a["factors"] if f["kind"] == "grid"]
    assert [(f["region"], f["value"], f["year"]) for f in grid] == [("north_east", 0.5122, 2023)]
    assert "MEE" in grid[0]["source"]


def test_green_certificates_lower_the_market_based_figure(seeded: TestClient):
    day = seeded.get(f"/api/v1/sites/{SITE_ID}/kpis", params={"period": "day", "date": "2026-11-20"}).json()
    e, c = day["electricity"], day["carbon"]
    # 0.1 GEC = 100 kWh, the whole day's purchase, falls on the three seeded hours of that day
    assert e["green_certificate_kwh"]["value"] == pytest.approx(100.0)
    market_kwh = e["grid_import_kwh"]["value"] - 100.0
    assert c["scope2_market_t"]["value"] == pytest.approx(market_kwh * 0.6096 / 1000)
    assert e["green_power_ratio"]["value"] == pytest.approx(
        (e["pv_self_consumed_kwh"]["value"] + 100.0) / e["consumption_kwh"]["value"])
    # the calendar day in Shenyang: 2026-11-20 00:00+08:00 to 2026-11-21 00:00+08:00
    assert day["start"].startswith("2026-11-19T16:00") and day["end"].startswith("2026-11-20T16:00")
    # the seeded hours cover 3 of the day's 24: coverage says so instead of padding with zeros
    assert e["consumption_kwh"]["coverage"] == pytest.approx(3 / 24, abs=0.01)


def test_series_gives_gaps_as_nulls(seeded: TestClient):
    r = seeded.get(f"/api/v1/sites/{SITE_ID}/kpis/series",
                   params={"start": (END - timedelta(hours=5)).isoformat(), "end": END.isoformat(),
                           "resolution": "1h"})
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert len(points) == 5
    assert [p["consumption_kwh"] is None for p in points] == [True, True, False, False, False]
    assert all(p["coverage"] == 0 for p in points[:2])


@pytest.mark.parametrize(("params", "field"), [
    ({"window": "1h", "period": "day"}, "query.period"),
    ({"window": "2h"}, "query.window"),
    ({"start": "2026-11-20T00:00:00"}, "query.start"),
    ({"start": "2026-11-20T00:00:00+08:00", "end": "2026-11-19T00:00:00+08:00"}, "query.start"),
    ({"end": "1970-01-02T00:00:00Z"}, "query.end"),  # no grid factor is valid before 2021
    ({"date": "2026-11-20"}, "query.date"),
])
def test_bad_windows_are_refused_naming_the_field(seeded: TestClient, params: dict, field: str):
    r = seeded.get(f"/api/v1/sites/{SITE_ID}/kpis", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in r.json()["errors"]} or field in r.json()["detail"]


def test_unknown_site_and_missing_key(seeded: TestClient):
    r = seeded.get("/api/v1/sites/nowhere/kpis")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    anonymous = TestClient(seeded.app).get(f"/api/v1/sites/{SITE_ID}/kpis")
    assert anonymous.status_code == 401


def test_a_nul_character_is_a_client_error(seeded: TestClient):
    r = seeded.get("/api/v1/sites/a%00b/model")
    assert r.status_code == 422, r.text
