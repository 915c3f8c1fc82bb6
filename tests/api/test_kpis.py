"""KPIs from seeded readings, checked against hand-worked figures (docs/domain.md formulas)."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from gateway.sinks.postgres import register_devices
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

# 10:00–12:00 China time on 2026-11-20 (02:00–04:00 UTC)
START = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
NOW = START + timedelta(hours=2, seconds=30)  # just after the last reading at 12:00:00


def seed(url: str) -> None:
    register_devices(url, "gw", "plant", "Plant", [
        ("grid", "Grid incomer", "grid_import", "modbus-tcp"),
        ("pv", "PV inverter", "pv_generation", "modbus-tcp"),
    ])
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("UPDATE sites SET grid_region = 'north_east' WHERE id = 'plant'")
    rows = []
    for i in range(0, 7200 + 1, 10):  # every 10 s for two hours
        t = START + timedelta(seconds=i)
        hours = i / 3600
        # grid imports a steady 300 kW and exports nothing; PV makes a steady 100 kW
        rows += [
            Reading(t, "grid", "active_power", 300.0),
            Reading(t, "grid", "active_energy_import", 10_000.0 + 300.0 * hours),
            Reading(t, "grid", "active_energy_export", 50.0),
            Reading(t, "pv", "active_power", 100.0),
            Reading(t, "pv", "active_energy_export", 2_000.0 + 100.0 * hours),
        ]
    store_readings(url, rows)


@pytest.fixture
def client(api_db: str, api_client: TestClient) -> TestClient:
    seed(api_db)
    return api_client


def test_energy_and_carbon_since_midnight(db):
    from lingtan.core.kpi import site_overview
    from lingtan.kernel.db import get_engine

    with get_engine(db).connect() as conn:
        seed(db)
        o = site_overview(conn, "plant", now=NOW)
    e, c = o.today.electricity, o.today.carbon
    # 2 h × 300 kW = 600 kWh imported; 2 h × 100 kW = 200 kWh of PV; nothing exported
    assert e.grid_import_kwh.value == pytest.approx(600.0, rel=1e-9)
    assert e.pv_generation_kwh.value == pytest.approx(200.0, rel=1e-9)
    assert e.consumption_kwh.value == pytest.approx(800.0, rel=1e-9)
    assert e.green_power_ratio.value == pytest.approx(0.25)  # 200 / 800
    # location-based: 600 kWh × 0.5122 kgCO2/kWh (North-East grid, MEE/NBS 2023) = 307.32 kg
    assert c.scope2_location_t.value == pytest.approx(0.30732)
    assert c.intensity_location_kg_per_kwh.value == pytest.approx(307.32 / 800)
    [grid] = [f for f in o.today.factors if f.kind == "grid"]
    assert grid.value == 0.5122 and "MEE/NBS" in grid.source
    # the window runs from local midnight; data covers only 10:00–12:00 of it
    assert o.today.start == datetime(2026, 11, 19, 16, 0, tzinfo=UTC) and o.today.end == NOW
    assert e.consumption_kwh.coverage == pytest.approx(121 / 720, abs=0.01)
    assert o.power.grid_kw == 300.0 and o.power.pv_kw == 100.0 and o.power.load_kw == 400.0


def test_a_silent_meter_is_offline_not_zero(db):
    from lingtan.core.kpi import site_overview
    from lingtan.kernel.db import get_engine

    seed(db)
    with get_engine(db).connect() as conn:
        o = site_overview(conn, "plant", now=NOW + timedelta(minutes=10))
    assert o.power.grid_kw is None and o.power.load_kw is None
    assert set(o.offline) == {"grid", "pv"}


def test_api_routes(client):
    assert client.get("/api/v1/health").json()["database"] == "ok"
    assert [s["id"] for s in client.get("/api/v1/sites").json()["items"]] == ["plant"]
    meters = client.get("/api/v1/sites/plant/meters").json()["items"]
    assert {m["id"]: m["role"] for m in meters} == {"grid": "grid_import", "pv": "pv_generation"}
    r = client.get("/api/v1/meters/grid/readings", params={
        "quantity": "active_power", "start": START.isoformat(),
        "end": (START + timedelta(minutes=1)).isoformat()})
    body = r.json()
    assert r.status_code == 200 and body["unit"] == "kW" and len(body["points"]) == 6
    r = client.get("/api/v1/meters/grid/readings", params={
        "quantity": "active_energy_import", "resolution": "15m",
        "start": START.isoformat(), "end": NOW.isoformat()})
    points = r.json()["points"]
    assert [p["count"] for p in points] == [90] * 8 + [1]  # 12:00:00 opens the ninth bucket
    series = client.get("/api/v1/sites/plant/power", params={
        "start": START.isoformat(), "end": NOW.isoformat(), "resolution": "15m"}).json()
    assert series["load_kw"] == [400.0] * 9


def test_api_errors_name_the_problem(client):
    r = client.get("/api/v1/sites/nowhere")
    assert r.status_code == 404 and "nowhere" in r.json()["detail"]
    r = client.get("/api/v1/meters/grid/readings", params={"quantity": "bogus"})
    assert r.status_code == 422 and "bogus" in r.json()["detail"]
    r = client.get("/api/v1/meters/grid/readings",
                   params={"quantity": "active_power", "start": "2026-11-20T00:00:00"})
    assert r.status_code == 422 and "time zone" in r.json()["detail"]
    r = client.get("/api/v1/sites/plant/power", params={"resolution": "5s"})
    assert r.status_code == 422


def test_now_values_are_read_from_the_last_value_table_not_the_history(db):
    """Power now, a meter's newest reading and the meters list read `latest_readings`: with the
    history gone (as TimescaleDB's retention drops old chunks), they still find the last values."""
    from lingtan.core.kpi import power_by_role, site_overview
    from lingtan.core.queries import latest, meters_latest
    from lingtan.kernel.db import get_engine

    seed(db)
    last = START + timedelta(hours=2)  # the newest reading of every series
    with psycopg.connect(libpq_url(db)) as conn:
        conn.execute("DELETE FROM readings")
    with get_engine(db).connect() as conn:
        o = site_overview(conn, "plant", now=NOW)
        assert o.power.grid_kw == 300.0 and o.power.pv_kw == 100.0 and o.offline == []
        flows = power_by_role(conn, "plant", ("grid_import", "load"), now=NOW)
        assert flows["grid_import"].kw == 300.0 and flows["load"].kw is None
        assert latest(conn, "grid", "active_energy_import") == (last, pytest.approx(10_600.0))
        assert latest(conn, "grid", "voltage") is None
        assert {(m.id, m.time) for m in meters_latest(conn, "plant")} == {("grid", last), ("pv", last)}


def test_a_share_outside_0_1_by_rounding_is_clamped_and_a_real_one_is_not(db):
    """Self-sufficiency = 1 − import ÷ consumption (docs/domain.md). Two sites at night (PV 0 kWh),
    each with a steady hour of counters, read over 10:00–11:00 China time."""
    from lingtan.core.figures import SHARE_NOISE, share
    from lingtan.core.kpi import window_kpis
    from lingtan.kernel.db import get_engine

    a = START
    b = a + timedelta(hours=1)
    per_hour = {  # site: (grid import, grid export) kWh per hour
        # the export counter ticked by 0.0043 kWh (its float32 register's last bits) while PV made
        # nothing: consumption = 1000.0043 − 0.0043 + 0 = 1000 kWh, and 1 − 1000.0043 ÷ 1000 =
        # −4.3e-6 — rounding, so the share is 0
        "noisy": (1000.0043, 0.0043),
        # 5 kWh went out while PV made nothing: consumption = 1005 − 5 = 1000 kWh,
        # 1 − 1005 ÷ 1000 = −0.005 — the meters disagree, and that shows
        "faulty": (1005.0, 5.0),
    }
    rows = []
    for site, (imp, exp) in per_hour.items():
        register_devices(db, "gw", site, site, [(f"{site}-grid", "Grid", "grid_import", "modbus-tcp"),
                                                (f"{site}-pv", "PV", "pv_generation", "modbus-tcp")])
        for i in range(-600, 3600 + 600 + 1, 10):  # every 10 s, ten minutes either side
            t = a + timedelta(seconds=i)
            rows += [Reading(t, f"{site}-grid", "active_energy_import", 50_000.0 + imp * i / 3600),
                     Reading(t, f"{site}-grid", "active_energy_export", 900.0 + exp * i / 3600),
                     Reading(t, f"{site}-pv", "active_energy_export", 41_000.0)]
    store_readings(db, rows)
    with get_engine(db).connect() as conn:
        noisy = window_kpis(conn, "noisy", a, b, b).electricity
        faulty = window_kpis(conn, "faulty", a, b, b).electricity
    assert noisy.consumption_kwh.value == pytest.approx(1000.0)
    assert noisy.self_sufficiency.value == 0.0
    assert faulty.consumption_kwh.value == pytest.approx(1000.0)
    assert faulty.self_sufficiency.value == pytest.approx(-0.005)
    assert noisy.green_power_ratio.value == 0.0 and noisy.self_consumption.value is None  # no PV
    # the edges of the band
    assert share(-SHARE_NOISE) == 0.0 and share(1 + SHARE_NOISE) == 1.0
    assert share(-2 * SHARE_NOISE) == -2 * SHARE_NOISE and share(1.5) == 1.5
    assert share(0.42) == 0.42 and share(None) is None
