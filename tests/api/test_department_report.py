"""The department report against the hand-worked plant of test_structure_kpis: March 2026 holds
780 one-minute steps (21:00 on the 10th to 10:00 on the 11th), March 2025 one hour of them.

    ws1  0.9 kWh/min → 702 kWh in March 2026, 54 kWh in March 2025 (+1200 %)
    ws2  0.7 kWh/min + the 30 kWh burst → 576 kWh; 42 kWh a year earlier
Targets: ws1 10 tce for 2026 (March: 10 × 31/365), ws2 0.05 tce for March 2026 itself.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from lingtan.kernel.db import get_engine
from tests.api.test_accounting import Ramp, local, seed
from tests.api.test_structure_kpis import ramps, site_file

REL = 1e-9
KGCE = 0.1229  # GB/T 2589-2020, electricity equivalent value, kgce/kWh


@pytest.fixture
def report_db(db: str) -> str:
    sf = site_file()
    nodes = sf["structure"]["nodes"]
    nodes[1]["targets"] = [{"year": 2026, "energy_tce": 10}]
    nodes[2]["targets"] = [{"year": 2026, "month": 3, "energy_tce": 0.05, "carbon_tco2e": 0.5}]
    earlier = local("2025-03-10T21:00:00")
    quantity = {"count1": "production_count"}
    rates = (("inc", 2.0), ("f1", 1.0), ("f2a", 0.2), ("f2", 0.4), ("shared", 0.2), ("count1", 0.5))
    last_year = [Ramp(m, quantity.get(m, "active_energy_import"), earlier, 60, r * 60) for m, r in rates]
    seed(db, sf, last_year + ramps())
    return db


def test_departments_ranked_against_last_year_and_their_targets(report_db: str) -> None:
    from lingtan.core.department_report import department_report

    with get_engine(report_db).connect() as conn:
        r = department_report(conn, "tree", "month", date(2026, 3, 10), local("2027-01-01T00:00:00"))
    assert [d.id for d in r.departments] == ["ws1", "ws2"]
    ws1, ws2 = r.departments
    assert ws1.electricity_kwh == pytest.approx(702.0, rel=REL)
    assert ws2.electricity_kwh == pytest.approx(576.0, rel=REL)
    assert ws1.tce == pytest.approx(702 * KGCE / 1000, rel=REL)
    assert ws1.last_year_tce == pytest.approx(54 * KGCE / 1000, rel=REL)
    assert ws1.change_tce == pytest.approx((702 - 54) / 54, rel=REL)
    assert ws2.last_year_tce == pytest.approx(42 * KGCE / 1000, rel=REL)
    assert ws1.target is not None and ws1.target.energy_tce == pytest.approx(10 * 31 / 365, rel=REL)
    assert ws1.vs_target_tce == pytest.approx(702 * KGCE / 1000 / (10 * 31 / 365), rel=REL)
    assert ws2.vs_target_tce == pytest.approx(576 * KGCE / 1000 / 0.05, rel=REL)
    assert ws2.vs_target_tco2e == pytest.approx(576 * 0.55 / 1000 / 0.5, rel=REL)
    assert ws1.carbon_cost_cny == pytest.approx(702 * 0.55 / 1000 * 100, rel=REL)
    assert ws1.ranks == {"tce": 1, "tco2e_market": 1, "carbon_cost_cny": 1, "cost_cny": 1}
    assert ws2.ranks["tce"] == 2
    assert sum(v or 0.0 for v in ws1.kwh_by_band.values()) == pytest.approx(702.0, rel=REL)
    assert r.carbon_price_cny_per_tco2e == 100


def test_csv_and_xlsx_carry_the_same_rows_and_the_xlsx_has_native_charts(report_db: str, api_client) -> None:
    params = {"period": "month", "date": "2026-03-10"}
    data = api_client.get("/api/v1/sites/tree/reports/departments", params=params)
    assert data.status_code == 200, data.text
    ws1 = data.json()["departments"][0]
    xlsx = api_client.get("/api/v1/sites/tree/reports/departments", params={**params, "format": "xlsx"})
    assert xlsx.status_code == 200
    assert 'filename="tree-departments-2026-03.xlsx"' in xlsx.headers["content-disposition"]
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book["Departments"]
    header = [c.value for c in sheet[1]]
    row = {h: c.value for h, c in zip(header, sheet[2], strict=True)}
    assert row["id"] == "ws1"
    assert row["tce"] == pytest.approx(ws1["tce"], rel=REL)
    assert row["electricity cost CNY"] == pytest.approx(ws1["cost_cny"], rel=REL)
    assert len(sheet._charts) == 2  # tce vs last year and target; cost by band, stacked
    csv = api_client.get("/api/v1/sites/tree/reports/departments", params={**params, "format": "csv"})
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    assert repr(ws1["tce"]) in csv.content.decode("utf-8-sig")


def test_a_site_without_departments_says_so(db: str) -> None:
    from lingtan.core.department_report import department_report

    sf = site_file()
    for n in sf["structure"]["nodes"]:
        n.pop("department", None)
    seed(db, sf, ramps())
    with get_engine(db).connect() as conn:
        r = department_report(conn, "tree", "month", date(2026, 3, 10), local("2026-03-12T00:00:00"))
    assert r.departments == [] and any("department: true" in n for n in r.notes)
    assert timedelta(0) < r.period.end - r.period.start
