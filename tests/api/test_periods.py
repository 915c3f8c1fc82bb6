"""Closed periods: a closed month keeps its figures when late data or a new factor arrives, and
its reports show the recomputed figures only as a restatement beside them.

Readings go in through the real write path (sink + rollup refresher); the clock is pinned, so
no test depends on the hour it runs at.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from dashboard.pages.reports import tables as dashboard_tables
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

TZ = "Asia/Shanghai"
ROOT = Path(__file__).parents[2]
# gas standard coal from the site's one heating value (docs/domain.md): 38.931 MJ/Nm³ ÷ 29.3076 MJ/kgce
GAS_KGCE = 38.931 / 29.3076
REL = 1e-9
# Early July 2023 at the site: June has ended, so it can be closed.
JULY_3 = datetime(2023, 7, 3, 9, 0, tzinfo=ZoneInfo(TZ))
JUNE = "/api/v1/sites/ne-plant/periods/month/2023-06-01"
INVENTORY = "/api/v1/sites/ne-plant/reports/ghg-inventory"
BALANCE = "/api/v1/sites/ne-plant/reports/energy-balance"
JUNE_Q = {"period": "month", "date": "2023-06-15"}


def local(text: str, tz: str = TZ) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def ramp(meter: str, quantity: str, start: datetime, minutes: int, first: float, last: float
         ) -> list[Reading]:
    """A counter read every minute, rising evenly from ``first`` to ``last``."""
    return [Reading(start + timedelta(minutes=i), meter, quantity, first + (last - first) * i / minutes)
            for i in range(minutes + 1)]


def make_site(url: str, site_id: str, tz: str, region: str, meters: list[dict[str, Any]]) -> None:
    from lingtan.core.site_model import import_site_file

    with get_engine(url).begin() as conn:
        import_site_file(conn, {"site": {"id": site_id, "name": f"Plant {site_id}", "timezone": tz,
                                         "grid_region": region},
                                "meters": meters})


@pytest.fixture
def june(api_db: str) -> str:
    """June 2023 in North-East China: 10 000 kWh from the grid and 1000 m³ of gas, in one hour."""
    make_site(api_db, "ne-plant", TZ, "north_east", [
        {"id": "grid", "role": "grid_import"},
        {"id": "gas", "role": "boiler_fuel", "params": {"fuel": "natural_gas"}}])
    at = local("2023-06-10T10:00:00")
    store_readings(api_db, [*ramp("grid", "active_energy_import", at, 60, 1000.0, 11_000.0),
                            *ramp("gas", "gas_volume", at, 60, 1000.0, 2000.0)])
    return api_db


@pytest.fixture
def engineer(api_client: TestClient, auth_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth_headers("engineer")


def figures(restatement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["figure"]: f for f in restatement["figures"]}


def test_closed_month_keeps_its_figures_and_restates_late_data_and_a_new_factor(
        june: str, api_client: TestClient, engineer: dict[str, str]) -> None:
    with clock.frozen(JULY_3):
        before = api_client.get(INVENTORY, params=JUNE_Q).json()
        assert before["status"]["state"] == "provisional" and before["status"]["period_status"] == "open"
        assert before["restatement"] is None

        r = api_client.post(f"{JUNE}/close", json={"note": "June signed off"}, headers=engineer)
        assert r.status_code == 201, r.text
        closed = r.json()
        assert closed["status"] == "closed" and closed["closing"]["note"] == "June signed off"
        assert closed["closing"]["closed_by"].startswith("key:") and closed["closing"]["closed_by"].endswith(
            "test engineer")
        assert datetime.fromisoformat(closed["closing"]["closed_at"]) == JULY_3
        # 10 000 kWh × 0.5122 kgCO2/kWh (North-East grid, MEE 2023) = 5.122 t
        assert closed["kpis"]["carbon"]["scope2_location_t"]["value"] == pytest.approx(5.122, rel=REL)
        used = {(f["kind"], f["subject"]): f for f in closed["factors"]}
        gas_factor = used[("co2", "natural_gas")]
        assert gas_factor["value"] == 21.62 and "MEE" in gas_factor["source"]
        assert closed["coverage"]["electricity.grid_import_kwh"] == pytest.approx(1 / 720, rel=1e-6)

        # Nothing has changed yet: the report shows the closed figures and no restatement.
        same = api_client.get(INVENTORY, params=JUNE_Q).json()
        assert same["status"]["state"] == "closed" and same["restatement"] is None
        assert same["totals"] == before["totals"]

        # Late data: 5000 kWh more on 20 June (the counter stood still in between), and the site's
        # own gas factor, 20.0 tCO2/10⁴ Nm³ instead of MEE's 21.62, valid for the whole year.
        at = local("2023-06-20T10:00:00")
        store_readings(june, ramp("grid", "active_energy_import", at, 60, 11_000.0, 16_000.0))
        r = api_client.post("/api/v1/sites/ne-plant/factor-overrides", headers=engineer, json={
            "kind": "co2", "subject": "natural_gas", "value": 20.0, "unit": "tCO2/10^4 Nm3",
            "source": "supplier gas analysis 2023", "valid_from": "2023-01-01"})
        assert r.status_code == 201, r.text

        inv = api_client.get(INVENTORY, params=JUNE_Q).json()
        bal = api_client.get(BALANCE, params=JUNE_Q).json()
        detail = api_client.get(JUNE).json()

    # The report still shows the figures as closed ...
    t = inv["totals"]
    assert t["scope1_t"]["value"] == pytest.approx(2.162, rel=REL)  # 1000 m³ × 21.62 / 10⁴
    assert t["scope2_location_t"]["value"] == pytest.approx(5.122, rel=REL)
    assert t["scope2_market_t"]["value"] == pytest.approx(6.096, rel=REL)  # 10 000 × 0.6096 residual mix
    assert t == before["totals"]
    assert inv["status"]["state"] == "closed"
    assert inv["status"]["text"].startswith("Closed 2023-07-03T09:00+08:00 by key:")
    assert "figure(s) differ" in inv["status"]["text"]

    # ... and beside them the recomputed ones, figure by figure.
    rs = inv["restatement"]
    assert rs["differs"] is True
    figs = figures(rs)
    assert all(f["differs"] for f in rs["figures"])  # a report lists only what differs
    s1 = figs["totals.scope1_t"]
    # now 1000 m³ × 20.0 / 10⁴ = 2.0 t: −0.162 t, the factor alone (no gas reading came late)
    assert (s1["closed"], s1["now"]) == (pytest.approx(2.162, rel=REL), pytest.approx(2.0, rel=REL))
    assert s1["difference"] == pytest.approx(-0.162, rel=1e-6)
    assert [x["kind"] for x in s1["reasons"]] == ["factor_changed"]
    assert "21.62" in s1["reasons"][0]["text"] and "supplier gas analysis 2023" in s1["reasons"][0]["text"]
    s2 = figs["totals.scope2_location_t"]
    # now 15 000 kWh × 0.5122 = 7.683 t: +2.561 t, the late data alone (the grid factor is unchanged)
    assert s2["now"] == pytest.approx(7.683, rel=REL) and s2["difference"] == pytest.approx(2.561, rel=1e-6)
    assert [x["kind"] for x in s2["reasons"]] == ["later_data"]
    # coverage: one hour of a 720-hour month, then two
    assert s2["closed_coverage"] == pytest.approx(1 / 720, rel=1e-6)
    assert s2["now_coverage"] == pytest.approx(2 / 720, rel=1e-6)
    # market-based: 15 000 × 0.6096 = 9.144 t, +3.048 t
    assert figs["totals.scope2_market_t"]["difference"] == pytest.approx(3.048, rel=1e-6)
    # total, location-based: 2.0 + 7.683 = 9.683 t against 7.284 t, +2.399 t
    assert figs["totals.total_location_t"]["difference"] == pytest.approx(2.399, rel=1e-6)
    gas = figs["lines[natural_gas].tco2e_location"]
    assert gas["difference"] == pytest.approx(-0.162, rel=1e-6) and gas["unit"] == "tCO2e"
    # the gas line's tce (1000 m³ × GAS_KGCE) did not move, so it is not listed
    assert "lines[natural_gas].tce" not in figs
    assert figs["lines[electricity].amount"]["difference"] == pytest.approx(5000.0, rel=1e-9)
    changed = [(c["kind"], c["subject"], c["closed"]["value"], c["now"]["value"])
               for c in rs["factor_changes"]]
    assert changed == [("co2", "natural_gas", 21.62, 20.0)]

    # The energy balance too: closed 10 000 × 0.1229 / 1000 + 1000 × GAS_KGCE / 1000 = 2.5573585 tce;
    # now 15 000 × 0.1229 / 1000 + 1.3283585 = 3.1718585 tce (+0.6145; the gas factor is CO2, not tce).
    assert bal["total_tce"]["value"] == pytest.approx(1.229 + GAS_KGCE, rel=REL)
    assert bal["status"]["state"] == "closed"
    total = figures(bal["restatement"])["total_tce"]
    assert total["now"] == pytest.approx(1.8435 + GAS_KGCE, rel=REL)
    assert total["difference"] == pytest.approx(0.6145, rel=1e-6)
    assert [x["kind"] for x in total["reasons"]] == ["later_data"]

    # The period itself: every closed KPI figure, differing or not.
    kp = figures(detail["restatement"])
    assert detail["status"] == "closed"
    assert detail["kpis"]["carbon"]["scope1_t"]["value"] == pytest.approx(2.162, rel=REL)
    assert kp["carbon.scope1_t"]["difference"] == pytest.approx(-0.162, rel=1e-6)
    assert kp["electricity.grid_import_kwh"]["difference"] == pytest.approx(5000.0, rel=1e-9)
    assert kp["electricity.grid_export_kwh"]["differs"] is False
    assert kp["energy.tce_total"]["differs"] is True
    assert [h["note"] for h in detail["history"]] == ["June signed off"]


def test_green_certificates_bought_after_closing_are_a_restatement(
        june: str, api_client: TestClient, engineer: dict[str, str]) -> None:
    with clock.frozen(JULY_3):
        assert api_client.post(f"{JUNE}/close", headers=engineer).status_code == 201
        r = api_client.post("/api/v1/sites/ne-plant/green-purchases", headers=engineer, json={
            "kind": "gec", "period_start": "2023-06-01", "period_end": "2023-07-01", "certificates": 1,
            "reference": "GEC bought in July"})
        assert r.status_code == 201, r.text
        inv = api_client.get(INVENTORY, params=JUNE_Q).json()
    assert inv["green_power"]["gec_kwh"]["value"] == 0.0  # as closed
    figs = figures(inv["restatement"])
    market = figs["totals.scope2_market_t"]
    # closed 10 000 kWh × 0.6096 = 6.096 t; now (10 000 − 1 × 1000 kWh) × 0.6096 = 5.4864 t
    assert market["now"] == pytest.approx(5.4864, rel=REL)
    assert market["difference"] == pytest.approx(-0.6096, rel=1e-6)
    assert [x["kind"] for x in market["reasons"]] == ["green_power_changed"]
    assert figs["green_power.gec_kwh"]["difference"] == pytest.approx(1000.0, rel=REL)
    assert "totals.scope2_location_t" not in figs  # the location-based basis ignores certificates
    assert inv["restatement"]["green_power_changed"] is True


def test_report_files_carry_the_status_line_and_the_restatement(
        june: str, api_client: TestClient, engineer: dict[str, str]) -> None:
    with clock.frozen(JULY_3):
        provisional = api_client.get(INVENTORY, params={**JUNE_Q, "format": "csv"})
        assert api_client.post(f"{JUNE}/close", headers=engineer).status_code == 201
        store_readings(june, ramp("grid", "active_energy_import", local("2023-06-20T10:00:00"), 60,
                                  11_000.0, 16_000.0))
        closed_csv = api_client.get(INVENTORY, params={**JUNE_Q, "format": "csv"})
        closed_xlsx = api_client.get(BALANCE, params={**JUNE_Q, "format": "xlsx"})
        with get_engine(june).connect() as conn:
            page, _ = dashboard_tables(conn, "ne-plant", "ghg-inventory", "month", date(2023, 6, 1))

    summary = {row[0]: row for row in csv.reader(io.StringIO(provisional.content.decode("utf-8-sig"))) if row}
    assert summary["Status"][1].startswith("Provisional: month 2023-06 has ended but is not closed")
    assert "Restatement" not in summary

    rows = list(csv.reader(io.StringIO(closed_csv.content.decode("utf-8-sig"))))
    status = next(r for r in rows if r and r[0] == "Status")
    assert status[1].startswith("Closed 2023-07-03T09:00+08:00 by key:")
    scope2 = next(r for r in rows if r and r[0] == "Scope 2, location-based, gross import")
    assert float(scope2[1]) == pytest.approx(5.122, rel=REL)  # the closed figure, not 7.683
    start = rows.index(["Restatement"])
    header = rows[start + 1]
    body = rows[start + 2:]
    restated = {r[0]: dict(zip(header, r, strict=True)) for r in body[:body.index([])]}
    line = restated["totals.scope2_location_t"]
    assert float(line["closed"]) == pytest.approx(5.122, rel=REL)
    assert float(line["now"]) == pytest.approx(7.683, rel=REL)
    assert line["reason"].startswith("later data arrived")

    # the dashboard's report page shows the same rows as the file
    dash_summary = {r[0]: r for r in next(t for t in page if t.name == "Summary").rows}
    assert dash_summary["Status"][1] == status[1]
    assert [t.name for t in page][-2:] == ["Restatement", "Notes"]

    wb = load_workbook(io.BytesIO(closed_xlsx.content))
    assert wb.sheetnames == ["Summary", "Balance", "Factors", "Restatement", "Notes"]
    summary_rows = {r[0]: r for r in wb["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary_rows["Status"][1].startswith("Closed ")
    assert summary_rows["Comprehensive energy consumption"][1] == pytest.approx(1.229 + GAS_KGCE, rel=REL)
    restated_xlsx = {r[0]: r for r in wb["Restatement"].iter_rows(min_row=2, values_only=True)}
    assert restated_xlsx["total_tce"][4] == pytest.approx(0.6145, rel=1e-6)


def test_running_period_reports_are_provisional(june: str, api_client: TestClient) -> None:
    with clock.frozen(local("2023-06-20T12:00:00")):
        inv = api_client.get(INVENTORY, params=JUNE_Q).json()
    assert inv["status"]["state"] == "provisional" and inv["status"]["period_status"] == "running"
    assert "still running" in inv["status"]["text"]


# The period ends at midnight in the site's zone. Shanghai (UTC+8) ends its month 8 hours before
# UTC does; Los Angeles (UTC−8 in winter) 8 hours after.
BOUNDARIES = [
    # last minute of November in Shanghai; UTC is mid-afternoon of 30 November
    ("sh", TZ, "month", "2026-11-01", datetime(2026, 11, 30, 15, 59, tzinfo=UTC), 409),
    # Shanghai's November has ended; UTC's has 8 hours to go
    ("sh", TZ, "month", "2026-11-01", datetime(2026, 11, 30, 16, 0, tzinfo=UTC), 201),
    # UTC's November has ended; Los Angeles is in the last minute of it
    ("la", "America/Los_Angeles", "month", "2026-11-01", datetime(2026, 12, 1, 7, 59, tzinfo=UTC), 409),
    ("la", "America/Los_Angeles", "month", "2026-11-01", datetime(2026, 12, 1, 8, 0, tzinfo=UTC), 201),
    # the year: Shanghai's 2026 has ended while UTC's has not
    ("sh", TZ, "year", "2026-01-01", datetime(2026, 12, 31, 15, 59, tzinfo=UTC), 409),
    ("sh", TZ, "year", "2026-06-30", datetime(2026, 12, 31, 16, 0, tzinfo=UTC), 201),
]


@pytest.mark.parametrize(("site", "tz", "period", "day", "at", "status"), BOUNDARIES)
def test_a_period_can_be_closed_only_once_it_has_ended_in_the_site_zone(
        api_db: str, api_client: TestClient, engineer: dict[str, str], site: str, tz: str, period: str,
        day: str, at: datetime, status: int) -> None:
    make_site(api_db, site, tz, "national", [{"id": f"{site}-grid", "role": "grid_import"}])
    with clock.frozen(at):
        r = api_client.post(f"/api/v1/sites/{site}/periods/{period}/{day}/close", headers=engineer)
        listed = api_client.get(f"/api/v1/sites/{site}/periods", params={"period": period}).json()
    assert r.status_code == status, r.text
    label = "2026-11" if period == "month" else "2026"
    row = next(i for i in listed["items"] if i["period"]["label"] == label)
    if status == 409:
        assert r.headers["content-type"] == "application/problem+json"
        assert "still running" in r.json()["detail"]
        assert row["status"] == "running" and row["closing"] is None
    else:
        assert r.json()["period"]["label"] == label
        assert row["status"] == "closed"
        # the period after it is the one running now, at the top
        assert listed["items"][0]["status"] == "running"


def test_closing_twice_is_a_conflict(june: str, api_client: TestClient, engineer: dict[str, str]) -> None:
    with clock.frozen(JULY_3):
        assert api_client.post(f"{JUNE}/close", headers=engineer).status_code == 201
        # any day of the month names the month
        r = api_client.post("/api/v1/sites/ne-plant/periods/month/2023-06-30/close", headers=engineer)
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "month 2023-06 is already closed; an admin can reopen it first"
    with get_engine(june).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM period_closings")).scalar_one() == 1


def test_roles_and_reopening_keeps_the_history(june: str, api_client: TestClient,
                                               auth_headers: Callable[..., dict[str, str]]) -> None:
    engineer, admin = auth_headers("engineer"), auth_headers("admin")
    reopen = {"reason": "grid meter readings re-imported"}
    with clock.frozen(JULY_3):
        r = api_client.post(f"{JUNE}/close")  # the client's own key is a viewer's
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        assert api_client.post(f"{JUNE}/reopen", json=reopen, headers=admin).status_code == 409  # not closed
        assert api_client.post(f"{JUNE}/close", json={"note": "first"}, headers=engineer).status_code == 201
        assert api_client.post(f"{JUNE}/reopen", json=reopen, headers=engineer).status_code == 403
        r = api_client.post(f"{JUNE}/reopen", json={"reason": ""}, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.reason"
        r = api_client.post(f"{JUNE}/reopen", json=reopen, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "open" and r.json()["closing"] is None
        assert api_client.get(INVENTORY, params=JUNE_Q).json()["status"]["state"] == "provisional"
        assert api_client.post(f"{JUNE}/close", json={"note": "second"}, headers=engineer).status_code == 201
        detail = api_client.get(JUNE).json()
        listed = api_client.get("/api/v1/sites/ne-plant/periods").json()
    history = detail["history"]
    assert [h["note"] for h in history] == ["first", "second"]
    assert history[0]["reopen_reason"] == "grid meter readings re-imported"
    assert history[0]["reopened_by"].startswith("key:") and history[1]["reopened_at"] is None
    assert detail["closing"]["note"] == "second"
    june_row = next(i for i in listed["items"] if i["period"]["label"] == "2023-06")
    assert (june_row["status"], june_row["reopened"], june_row["closing"]["note"]) == ("closed", 1, "second")
    assert [i["period"]["label"] for i in listed["items"]] == ["2023-07", "2023-06"]  # data began in June
    assert listed["items"][0]["status"] == "running"


def test_bad_paths_name_the_field(june: str, api_client: TestClient, engineer: dict[str, str]) -> None:
    r = api_client.post("/api/v1/sites/ne-plant/periods/week/2023-06-01/close", headers=engineer)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["path.period"]
    r = api_client.post("/api/v1/sites/ne-plant/periods/month/2023-13-01/close", headers=engineer)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["path.date"]
    r = api_client.post("/api/v1/sites/nowhere/periods/month/2023-06-01/close", headers=engineer)
    assert r.status_code == 404 and "nowhere" in r.json()["detail"]
    r = api_client.post(f"{JUNE}/close", json={"note": "x" * 2001}, headers=engineer)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body.note"]


def test_float_noise_is_not_a_difference() -> None:
    from lingtan.core.closings import restate

    def fig(v: float) -> dict[str, Any]:
        return {"a": {"value": v, "unit": "tCO2e", "coverage": 1.0}}

    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert 0.1 + 0.2 != 0.3
    assert restate(fig(0.3), fig(0.1 + 0.2), [], [], at).differs is False
    moved = restate(fig(0.3), fig(0.3000001), [], [], at)
    assert moved.differs is True and moved.figures[0].reasons[0].kind == "unknown"


def lingtan(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINGTAN_DATABASE_URL": db}
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)


def test_cli_closes_lists_and_reopens(june: str) -> None:
    # June 2023 has ended whatever the machine's clock says; 2099 has not.
    out = lingtan(june, "periods", "close", "ne-plant", "--period", "month", "--date", "2023-06-15",
                  "--note", "June signed off", "--by", "li.wei")
    assert out.returncode == 0, out.stderr
    assert "closed month 2023-06 of ne-plant" in out.stdout and "by li.wei" in out.stdout
    assert "Scope 1 2.162 tCO2e; Scope 2 location-based 5.122 tCO2e" in out.stdout

    again = lingtan(june, "periods", "close", "ne-plant", "--period", "month", "--date", "2023-06-01")
    assert again.returncode == 1 and "already closed" in again.stderr
    running = lingtan(june, "periods", "close", "ne-plant", "--period", "year", "--date", "2099-01-01")
    assert running.returncode == 1 and "still running" in running.stderr
    bad = lingtan(june, "periods", "close", "ne-plant", "--date", "June")
    assert bad.returncode == 2 and "--date" in bad.stderr

    listed = lingtan(june, "periods", "list", "ne-plant")
    assert listed.returncode == 0, listed.stderr
    june_line = next(line for line in listed.stdout.splitlines() if line.startswith("2023-06"))
    assert "closed" in june_line and "li.wei" in june_line and "June signed off" in june_line

    reopened = lingtan(june, "periods", "reopen", "ne-plant", "--date", "2023-06-01", "--reason", "re-import")
    assert reopened.returncode == 0, reopened.stderr
    assert "1 closing(s) in its history" in reopened.stdout
    with get_engine(june).connect() as conn:
        row = conn.execute(sa.text("SELECT closed_by, reopen_reason FROM period_closings")).one()
    assert tuple(row) == ("li.wei", "re-import")
