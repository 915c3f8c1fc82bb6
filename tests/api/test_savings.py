"""Baselines and measured savings on data with a known linear truth, stored through the real write
path: energy = 400 + 2·production + 15·HDD + noise (σ = 20 kWh), daily, with a step saving of
120 kWh/day from a known date (docs/domain.md, "Baselines and savings").

Days: 1 March 2026 (Shanghai) + 0 … 179. Baseline days 0–99, installation 100–109 (excluded),
reporting 110–179 (70 days): the true avoided energy is 70 × 120 = 8400 kWh.

Readings every 15 minutes (the longest gap whose timing counts, docs/domain.md); each day's counters
rise only after its 00:00 reading, so a day's energy lands in that day whatever the rollups do with
a delta that ends at midnight.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from dashboard.sentences import says
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading

TZ = "Asia/Shanghai"
DAY0 = date(2026, 3, 1)
DAYS = 180
A, B, C, SIGMA, STEP = 400.0, 2.0, 15.0, 20.0, 120.0
NOW = datetime(2026, 8, 28, 10, 0, tzinfo=ZoneInfo(TZ))  # the data's last day, 27 August, has ended
SITE = "/api/v1/sites/mv-plant"


def day(i: int) -> date:
    return DAY0 + timedelta(days=i)


def truth() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energy, production, daily mean temperature) per day, seeded."""
    rng = np.random.default_rng(50006)
    production = rng.uniform(200.0, 400.0, DAYS)
    temp = rng.uniform(3.0, 15.0, DAYS)
    # the reporting days stay within the conditions the baseline saw (the range rule)
    production[100:] = np.clip(production[100:], production[:100].min(), production[:100].max())
    temp[100:] = np.clip(temp[100:], temp[:100].min(), temp[:100].max())
    hdd = np.maximum(18.0 - temp, 0.0)
    energy = A + B * production + C * hdd + rng.normal(0.0, SIGMA, DAYS)
    energy[110:] -= STEP
    return energy, production, temp


SITE_FILE: dict[str, Any] = {
    "site": {"id": "mv-plant", "name": "M&V plant", "timezone": TZ, "grid_region": "north_east"},
    "energy": {"tariff": {"flat_cny_per_kwh": 0.7}},
    "meters": [{"id": "grid", "role": "grid_import"}, {"id": "comp1", "name": "Compressor 1"},
               {"id": "prod", "role": "production"}, {"id": "outdoor", "name": "Outdoor temperature"}],
    "energy_baselines": [
        {"id": "air", "boundary": {"meters": ["comp1"]},
         "baseline": {"start": "2026-03-01", "end": "2026-06-08"},
         "variables": [{"name": "production", "source": "production"},
                       {"name": "hdd", "source": "hdd", "meter": "outdoor"}]},
    ],
    "projects": [
        {"id": "vfd", "name": "Compressor 1 VFD", "option": "B", "boundary": {"meters": ["comp1"]},
         "baseline": {"start": "2026-03-01", "end": "2026-06-08"},
         "installation": {"start": "2026-06-09", "end": "2026-06-18"},
         "reporting": {"start": "2026-06-19"}, "confidence": 0.9,
         "variables": [{"name": "production", "source": "production"},
                       {"name": "hdd", "source": "hdd", "meter": "outdoor"}],
         "static_factors": ["discharge pressure 0.7 MPa"],
         "claimed": {"energy_per_year": 36500, "source": "supplier's proposal"}},
    ],
}


def readings() -> list[Reading]:
    energy, production, temp = truth()
    zone = ZoneInfo(TZ)
    out: list[Reading] = []
    e = p = 0.0
    for i in range(DAYS):
        d = day(i)
        midnight = datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)
        for q in range(96):
            t = midnight + timedelta(minutes=15 * q)
            if q > 0:  # 00:15 … 23:45 carry the day's energy; the 00:00 reading closes the day before
                e += energy[i] / 95
                p += production[i] / 95
            out += [Reading(t, "comp1", "active_energy_import", e), Reading(t, "prod", "production_count", p)]
            if q % 4 == 0:  # a temperature is a level: hourly is plenty
                out.append(Reading(t, "outdoor", "temperature", temp[i]))
        # the grid incomer only prices the saving (its energy counted across a gap keeps the price)
        out.append(Reading(midnight, "grid", "active_energy_import", e))
    return out


def seed_plant(url: str) -> str:
    """The synthetic plant: its site file and its 180 days of readings (stored once a session)."""
    from lingtan.core.site_model import import_site_file
    from tests.pipeline import store_readings_once

    with get_engine(url).begin() as conn:
        import_site_file(conn, copy.deepcopy(SITE_FILE))
    store_readings_once(url, "mv-plant", readings)
    return url


@pytest.fixture
def plant(api_db: str) -> str:
    return seed_plant(api_db)


@pytest.fixture
def viewer(auth_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth_headers("viewer")


def test_the_baseline_recovers_the_known_truth(plant: str, api_client: TestClient, viewer: dict[str, str]
                                               ) -> None:
    with clock.frozen(NOW):
        r = api_client.get(f"{SITE}/baselines/air", headers=viewer)
    assert r.status_code == 200, r.text
    b = r.json()
    fit = b["fit"]
    assert fit["n"] == 100 and fit["p"] == 3 and fit["adequate"] and not b["left_out"]
    t95 = stats.t.ppf(0.975, fit["n"] - fit["p"])
    for name, true in (("intercept", A), ("production", B), ("hdd", C)):
        c = fit["coefficients"][name]
        assert abs(c["estimate"] - true) <= t95 * c["std_error"], (name, c)
    # CV(RMSE) estimates 100·σ/ȳ: s/σ has a standard deviation of about 1/√(2(n − p))
    energy, _, _ = truth()
    expected_cv = 100 * SIGMA / energy[:100].mean()
    assert abs(fit["cv_rmse_pct"] - expected_cv) <= 3 / np.sqrt(2 * 97) * expected_cv
    # after the baseline: the installation days and the saving show in the EnPI and the CUSUM
    assert b["enpi_ratio"] < 1
    since = b["since"]
    assert since[0]["label"] == "2026-06-09" and len(since) == DAYS - 100
    assert since[-1]["cusum"] < -0.8 * STEP * 70  # falling: savings
    names = [c["name"] for c in fit["criteria"]]
    assert "R² ≥ 0.5" in names and "F-test p < 0.10" in names


def test_the_project_saving_is_the_step_within_its_uncertainty(plant: str, api_client: TestClient,
                                                               viewer: dict[str, str]) -> None:
    with clock.frozen(NOW):
        whole = api_client.get(f"{SITE}/projects/vfd/savings", headers=viewer).json()
        june = api_client.get(f"{SITE}/projects/vfd/savings",
                              params={"period": "month", "date": "2026-06-20"}, headers=viewer).json()
        listed = api_client.get(f"{SITE}/projects", headers=viewer).json()
    assert [p["id"] for p in listed] == ["vfd"] and listed[0]["option"] == "B"
    assert whole["period"] == ["2026-06-19", "2026-08-27"] and len(whole["points"]) == 70
    true = STEP * 70
    assert abs(whole["avoided"] - true) <= whole["uncertainty"], whole
    assert whole["confidence"] == 0.9 and whole["a"] == 1.26
    assert whole["uncertainty_below_half"] is True
    # tce and CO2 of the avoided kWh with the 2026 factors (library 2023 data year), CNY at 0.7 a kWh
    c = whole["converted"]
    assert c["tce"] == pytest.approx(whole["avoided"] * 0.1229 / 1000, rel=1e-9)
    assert c["tco2e_location"] == pytest.approx(whole["avoided"] * 0.5122 / 1000, rel=1e-9)
    assert c["tco2e_market"] == pytest.approx(whole["avoided"] * 0.6096 / 1000, rel=1e-9)
    assert c["cny"] == pytest.approx(whole["avoided"] * 0.7, rel=1e-9)
    # claimed 36,500 kWh a year = 100 a day, over 70 days
    assert whole["claimed_for_period"] == pytest.approx(7000.0)
    assert whole["measured_vs_claimed"] == pytest.approx(whole["avoided"] / 7000.0)
    # twelve June days: a shorter reporting period, a wider fractional uncertainty (∝ 1/√m for a
    # similar saving fraction)
    assert june["period"] == ["2026-06-19", "2026-06-30"] and len(june["points"]) == 12
    assert june["fractional_uncertainty"] > whole["fractional_uncertainty"]
    ratio = june["fractional_uncertainty"] / whole["fractional_uncertainty"]
    f_whole = whole["avoided"] / whole["adjusted_baseline"]
    f_june = june["avoided"] / june["adjusted_baseline"]
    assert ratio == pytest.approx(np.sqrt(70 / 12) * f_whole / f_june, rel=1e-9)


def test_a_model_that_fails_is_said_to_fail_and_states_no_saving(plant: str, api_client: TestClient,
                                                                 viewer: dict[str, str],
                                                                 auth_headers: Callable[..., dict[str, str]]
                                                                 ) -> None:
    """Energy regressed on a number unrelated to it (seeded noise) fails the F-test and R² rules."""
    noise = np.random.default_rng(7).uniform(0, 1, 100)
    doc = {k: copy.deepcopy(SITE_FILE[k]) for k in ("energy_baselines", "projects")}
    unrelated = [{"name": "lunar", "source": "entered",
                  "values": [{"date": day(i).isoformat(), "value": float(noise[i % 100])}
                             for i in range(DAYS)]}]
    doc["projects"][0]["variables"] = unrelated
    engineer = auth_headers("engineer")
    with clock.frozen(NOW):
        put = api_client.put(f"{SITE}/savings", headers=engineer, json=doc)
        assert put.status_code == 200, put.text
        r = api_client.get(f"{SITE}/projects/vfd/savings", headers=viewer).json()
    assert r["fit"]["adequate"] is False
    assert "R² ≥ 0.5" in r["fit"]["failed"] and "F-test p < 0.10" in r["fit"]["failed"]
    assert r["avoided"] is None and any("fails" in n and "R² ≥ 0.5" in n for n in r["notes"])


def _with_entered_production(production: np.ndarray) -> dict[str, Any]:
    doc = {k: copy.deepcopy(SITE_FILE[k]) for k in ("energy_baselines", "projects")}
    doc["projects"][0]["variables"][0] = {
        "name": "production", "source": "entered",
        "values": [{"date": day(i).isoformat(), "value": float(production[i])} for i in range(DAYS)]}
    return doc


def test_reporting_days_beyond_the_baseline_range_are_named_and_their_mean_decides(
        plant: str, api_client: TestClient, viewer: dict[str, str],
        auth_headers: Callable[..., dict[str, str]]) -> None:
    """The EnPI tool's rule: two busy reporting days above the busiest baseline day leave the model
    adequate (the reporting mean is inside) and are counted in a note; a reporting period whose mean
    is beyond the baseline's range and mean + 3σ fails the rule by name and states no saving."""
    _, production, _ = truth()
    top = production[:100].max()
    busy = production.copy()
    busy[[120, 121]] = top * 1.02
    engineer = auth_headers("engineer")
    with clock.frozen(NOW):
        assert api_client.put(f"{SITE}/savings", headers=engineer,
                              json=_with_entered_production(busy)).status_code == 200
        r = api_client.get(f"{SITE}/projects/vfd/savings", headers=viewer).json()
    assert r["fit"]["adequate"] is True and r["avoided"] is not None
    n_reporting = len(r["points"])
    (note,) = [n for n in r["notes"] if "lie outside the baseline's range" in n]
    assert note.startswith(f"2 of {n_reporting} reporting points of production")
    # the Savings page words it in Chinese, with the core's numbers
    assert says(note, "zh").startswith(f"production 的 {n_reporting} 个报告期数据点中有 2 个超出基准期范围 [")
    rule = next(c for c in r["fit"]["criteria"] if c["name"].startswith("production reporting mean"))
    assert rule["passed"] and rule["value"] == pytest.approx(float(np.mean(busy[110:])), rel=1e-9)
    base = busy[:100]
    far = busy.copy()
    far[100:] = base.mean() + 3.5 * base.std(ddof=1) + (top - base.min())
    with clock.frozen(NOW):
        assert api_client.put(f"{SITE}/savings", headers=engineer,
                              json=_with_entered_production(far)).status_code == 200
        bad = api_client.get(f"{SITE}/projects/vfd/savings", headers=viewer).json()
    assert bad["fit"]["adequate"] is False and bad["avoided"] is None
    assert any(f.startswith("production reporting mean within the baseline's range or mean ± 3σ [")
               for f in bad["fit"]["failed"])


def test_bad_input_names_the_field(plant: str, api_client: TestClient, viewer: dict[str, str],
                                   auth_headers: Callable[..., dict[str, str]]) -> None:
    engineer = auth_headers("engineer")
    doc = {k: copy.deepcopy(SITE_FILE[k]) for k in ("energy_baselines", "projects")}
    doc["projects"][0]["boundary"] = {"meters": ["nope"]}
    bad_meter = api_client.put(f"{SITE}/savings", headers=engineer, json=doc)
    assert bad_meter.status_code == 422 and "body.projects.0.boundary.meters.0" in bad_meter.text
    doc = {k: copy.deepcopy(SITE_FILE[k]) for k in ("energy_baselines", "projects")}
    doc["projects"][0]["option"] = "C"
    option = api_client.put(f"{SITE}/savings", headers=engineer, json=doc)
    assert option.status_code == 422 and "option C measures the whole facility" in option.text
    doc = {k: copy.deepcopy(SITE_FILE[k]) for k in ("energy_baselines", "projects")}
    doc["projects"][0]["reporting"]["start"] = "2026-06-10"
    order = api_client.put(f"{SITE}/savings", headers=engineer, json=doc)
    assert order.status_code == 422 and "reporting.start: must be after the installation period" in order.text
    with clock.frozen(NOW):
        before = api_client.get(f"{SITE}/projects/vfd/savings",
                                params={"period": "month", "date": "2026-04-01"}, headers=viewer)
        missing = api_client.get(f"{SITE}/projects/none/savings", headers=viewer)
    assert before.status_code == 422 and "outside the reporting period" in before.text
    assert missing.status_code == 404



def test_the_monthly_report_carries_each_projects_savings(plant: str, api_client: TestClient,
                                                          viewer: dict[str, str]) -> None:
    """The department report's savings section is the project's answer for the same month."""
    import io

    from openpyxl import load_workbook

    q = {"period": "month", "date": "2026-07-15"}
    with clock.frozen(NOW):
        report = api_client.get(f"{SITE}/reports/departments", params=q, headers=viewer).json()
        july = api_client.get(f"{SITE}/projects/vfd/savings", params=q, headers=viewer).json()
        xlsx = api_client.get(f"{SITE}/reports/departments", params={**q, "format": "xlsx"}, headers=viewer)
        march = api_client.get(f"{SITE}/reports/departments",
                               params={"period": "month", "date": "2026-03-15"}, headers=viewer).json()
    (s,) = report["savings"]
    assert s["period"] == ["2026-07-01", "2026-07-31"] and s["avoided"] == july["avoided"]
    assert s["uncertainty"] == july["uncertainty"] and s["converted"] == july["converted"]
    sheet = load_workbook(io.BytesIO(xlsx.content))["Savings"]
    rows = list(sheet.iter_rows(values_only=True))
    header, row = rows[0], rows[1]
    assert row[header.index("avoided")] == pytest.approx(july["avoided"], rel=1e-12)
    assert march["savings"] == []  # March lies in the baseline period: no reporting days


def test_avoided_gas_steam_and_heat_are_converted_as_the_engine_converts_them(plant: str) -> None:
    """Hand-worked with the library defaults (docs/domain.md): 100 Nm³ of gas at 389.31 GJ/10⁴ Nm³ is
    0.2162 tCO2 (21.62 t/10⁴ Nm³) and 100 × 38.931 ÷ 29.3076 ÷ 1000 = 0.132835 tce; 10 t of steam by
    the enthalpy convention is 26.796 GJ: 2.94756 tCO2 (0.11 t/GJ) and 0.914280 tce (0.03412 tce/GJ);
    10 GJ of heat is 1.1 tCO2 and 0.3412 tce. No price is held for them: no CNY."""
    from lingtan.core.savings_service import _converted
    from lingtan.core.site_model import load_site_model

    with get_engine(plant).connect() as conn:
        model = load_site_model(conn, "mv-plant")
    d = date(2026, 7, 1)
    g = _converted(model, "gas", 100.0, d, d, (None, 0.0))
    assert g.tco2e_location == pytest.approx(0.2162, rel=1e-9) and g.tco2e_market == g.tco2e_location
    assert g.tce == pytest.approx(100 * 38.931 / 29.3076 / 1000, rel=1e-9) and g.cny is None
    st = _converted(model, "steam", 10.0, d, d, (None, 0.0))
    assert st.tco2e_location == pytest.approx(2.94756, rel=1e-6)
    assert st.tce == pytest.approx(0.914280, rel=1e-6)
    h = _converted(model, "heat", -10.0, d, d, (None, 0.0))  # a negative saving stays negative
    assert h.tco2e_location == pytest.approx(-1.1, rel=1e-9) and h.tce == pytest.approx(-0.3412, rel=1e-9)
