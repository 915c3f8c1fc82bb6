"""Reports: GHG inventory, energy balance and green-factory indicators as JSON, CSV and XLSX.

Seeded through the real write path (sink + rollup refresher) and read through the API, so the
reports are checked against the KPI engine on the same database and against hand-worked figures.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.periods import calendar
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

TZ = "Asia/Shanghai"
GAS_TCE = 1000 * 38.931 / 29.3076 / 1000  # 1000 m³ at the MEE NCV ÷ 29.3076 MJ/kgce (GB/T 2589)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REL = 1e-9


@dataclass
class Burst:
    """Meters read every minute for ``minutes``; each counter rises evenly by the given amount.

    Between bursts the counters stand still, so no energy falls into a gap.
    """

    start: datetime
    minutes: int
    import_kwh: float
    export_kwh: float = 0.0
    pv_kwh: float = 0.0
    gas_m3: float = 0.0
    units: float = 0.0
    compressor_kwh: float = 0.0
    heat_gj: float = 0.0


# counter quantity and meter for each Burst field
COUNTERS = {
    "import_kwh": ("grid", "active_energy_import"), "export_kwh": ("grid", "active_energy_export"),
    "pv_kwh": ("pv", "active_energy_export"), "gas_m3": ("gas", "gas_volume"),
    "units": ("line", "production_count"), "compressor_kwh": ("comp", "active_energy_import"),
    "heat_gj": ("heat", "heat_energy"),
}
METERS = {
    "grid": {"role": "grid_import"}, "pv": {"role": "pv_generation"},
    "gas": {"role": "boiler_fuel", "params": {"fuel": "natural_gas"}},
    "line": {"role": "production"}, "comp": {"role": "compressor"},
    "heat": {"role": "purchased_heat", "params": {"heat_carrier": "heat"}},
}


def seed(url: str, site_id: str, region: str, meters: list[str], bursts: list[Burst],
         green_power: list[dict] | None = None, energy: dict | None = None) -> None:
    from lingtan.core.site_model import import_site_file

    site_file = {
        "site": {"id": site_id, "name": f"Plant {site_id}", "timezone": TZ, "grid_region": region},
        "energy": {"production_unit": "t", "gas_price_cny_per_m3": 3.6, **(energy or {})},
        "meters": [{"id": m, **METERS[m]} for m in meters],
        "green_power": green_power or [],
    }
    with get_engine(url).begin() as conn:
        import_site_file(conn, site_file)
    totals = {name: 1000.0 for name in COUNTERS}  # counters never start at zero in the field
    rows: list[Reading] = []
    for b in bursts:
        start_totals = dict(totals)
        for i in range(b.minutes + 1):
            t = b.start + timedelta(minutes=i)
            for name, (meter, quantity) in COUNTERS.items():
                if meter not in meters:
                    continue
                totals[name] = start_totals[name] + getattr(b, name) * i / b.minutes
                rows.append(Reading(t, meter, quantity, totals[name]))
    store_readings(url, rows)


def utc(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def kpis_for(url: str, site_id: str, period: str, day: date):
    from lingtan.core.kpi import window_kpis

    a, b = calendar(period, day, TZ)
    with get_engine(url).connect() as conn:
        return window_kpis(conn, site_id, a, b)


def csv_sections(body: bytes) -> dict[str, list[dict[str, str]]]:
    """{section title: rows as dicts keyed by the section's header}."""
    assert body.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    sections: dict[str, list[dict[str, str]]] = {}
    while rows:
        title, header, *rest = rows
        end = rest.index([]) if [] in rest else len(rest)
        sections[title[0]] = [dict(zip(header, r, strict=True)) for r in rest[:end]]
        rows = rest[end + 1:]
    return sections


def num(text: str) -> float | None:
    return float(text) if text else None


# --- a hand-worked month ---------------------------------------------------------------------


@pytest.fixture
def north_east(api_db: str) -> str:
    """June 2023 in North-East China: 10 000 kWh from the grid, 1000 m³ gas, 3 green certificates."""
    seed(api_db, "ne-plant", "north_east", ["grid", "gas"],
         [Burst(utc("2023-06-10T10:00:00"), 60, import_kwh=10_000.0, gas_m3=1000.0)],
         green_power=[{"kind": "gec", "period_start": "2023-06-01", "period_end": "2023-07-01",
                       "certificates": 3, "reference": "GEC batch 2023-06"}])
    return api_db


def test_hand_worked_inventory(north_east: str, api_client) -> None:
    r = api_client.get("/api/v1/sites/ne-plant/reports/ghg-inventory",
                       params={"period": "month", "date": "2023-06-15"})
    assert r.status_code == 200, r.text
    inv = r.json()
    assert inv["site"] == {"id": "ne-plant", "name": "Plant ne-plant", "timezone": TZ,
                           "grid_region": "north_east", "factor_set": "mee-2023"}
    assert inv["period"]["label"] == "2023-06"
    assert inv["period"]["start"] == "2023-06-01T00:00:00+08:00"
    assert inv["period"]["end"] == "2023-07-01T00:00:00+08:00"
    lines = {ln["carrier"]: ln for ln in inv["lines"]}
    # 10 000 kWh × 0.5122 kgCO2/kWh (North-East grid 2023) = 5.122 t
    assert lines["electricity"]["scope"] == 2
    assert lines["electricity"]["amount"] == pytest.approx(10_000.0, rel=REL)
    assert lines["electricity"]["tco2e_location"] == pytest.approx(5.122, rel=REL)
    # market-based: (10 000 − 3 × 1000 kWh of certificates) × 0.6096 residual mix = 4.2672 t
    assert lines["electricity"]["tco2e_market"] == pytest.approx(4.2672, rel=REL)
    # 10 000 kWh × 0.1229 kgce/kWh = 1.229 tce
    assert lines["electricity"]["tce"] == pytest.approx(1.229, rel=REL)
    # 1000 m³ × 21.62 tCO2/10⁴Nm³ = 2.162 t; tce from the same NCV (389.31 GJ/10⁴Nm³):
    # 1000 m³ × 38.931 MJ/m³ ÷ 29.3076 MJ/kgce = 1328.36 kgce (no longer GB/T 2589's gas-field
    # 1.2143 kgce/m³, which is a second heating value, 35.59 MJ/m³)
    assert lines["natural_gas"]["scope"] == 1
    assert lines["natural_gas"]["tco2e_location"] == pytest.approx(2.162, rel=REL)
    assert lines["natural_gas"]["tce"] == pytest.approx(GAS_TCE, rel=REL)
    t = inv["totals"]
    assert t["scope1_t"]["value"] == pytest.approx(2.162, rel=REL)
    assert t["scope2_location_t"]["value"] == pytest.approx(5.122, rel=REL)
    assert t["scope2_market_t"]["value"] == pytest.approx(4.2672, rel=REL)
    assert t["total_location_t"]["value"] == pytest.approx(7.284, rel=REL)
    assert t["total_market_t"]["value"] == pytest.approx(6.4292, rel=REL)
    assert inv["green_power"]["gec_kwh"]["value"] == pytest.approx(3000.0, rel=REL)
    assert inv["green_power"]["trade_kwh"]["value"] == 0.0
    assert any("GEC batch 2023-06" in p for p in inv["green_power"]["purchases"])
    used = {(f["kind"], f["subject"]): f for f in inv["factors"]}
    assert used[("grid", "north_east")]["value"] == 0.5122 and used[("grid", "north_east")]["year"] == 2023
    assert "MEE/NBS" in used[("grid", "north_east")]["source"]
    assert used[("grid_residual", "national")]["value"] == 0.6096
    assert used[("co2", "natural_gas")]["value"] == 21.62
    assert used[("tce", "electricity")]["value"] == 0.1229
    assert used[("tce", "natural_gas")]["value"] == pytest.approx(38.931 / 29.3076, rel=REL)
    assert any("residual mix" in n for n in inv["notes"])
    # one hour of data in a 30-day month
    assert any("covers" in n for n in inv["notes"])
    assert inv["monthly"] is None


def test_hand_worked_balance_and_indicators(north_east: str, api_client) -> None:
    params = {"period": "month", "date": "2023-06-01"}
    b = api_client.get("/api/v1/sites/ne-plant/reports/energy-balance", params=params).json()
    total = 1.229 + GAS_TCE
    assert b["total_tce"]["value"] == pytest.approx(total, rel=REL)
    assert b["total_tce_equal_value"]["value"] is None
    inputs = {ln["item"]: ln for ln in b["inputs"]}
    assert set(inputs) == {"grid import", "natural gas"}  # no PV meter, so no PV line
    assert inputs["grid import"]["tce"] == pytest.approx(1.229, rel=REL)
    assert inputs["grid import"]["share"] == pytest.approx(1.229 / total, rel=REL)
    assert inputs["natural gas"]["amount"] == pytest.approx(1000.0, rel=REL)
    assert inputs["natural gas"]["share"] == pytest.approx(GAS_TCE / total, rel=REL)
    assert b["outputs"][0]["amount"] == 0.0
    assert b["recovered_heat"]["basis"] == "none" and b["recovered_heat"]["amount"] is None

    g = api_client.get("/api/v1/sites/ne-plant/reports/green-factory", params=params).json()
    ind = {i["key"]: i for i in g["indicators"]}
    assert ind["green_power_ratio"]["value"] == pytest.approx(0.3, rel=REL)  # 3000 / 10 000 kWh
    assert ind["self_sufficiency"]["value"] == pytest.approx(0.0, abs=1e-12)
    # 3000 green kWh × 0.1229 kgce/kWh = 0.3687 tce of 1.229 + 1.3284 tce
    assert ind["renewable_share"]["value"] == pytest.approx(0.3687 / total, rel=REL)
    assert ind["energy_per_unit"]["value"] is None  # no production counter
    assert ind["energy_per_unit"]["name_zh"] == "单位产品综合能耗"
    assert all(i["formula"] for i in g["indicators"])
    assert any("baseline" in n for n in g["notes"])
    assert any("production counter" in n for n in g["notes"])


# --- a full plant ----------------------------------------------------------------------------

PLANT_METERS = ["grid", "pv", "gas", "line", "comp", "heat"]


@pytest.fixture
def plant(api_db: str) -> str:
    """November 2025: two days of data with PV, export, gas, purchased heat, production and a compressor."""
    seed(api_db, "sy-plant", "north_east", PLANT_METERS, [
        Burst(utc("2025-11-03T08:00:00"), 240, import_kwh=4000.0, export_kwh=150.0, pv_kwh=900.0,
              gas_m3=310.0, units=42.0, compressor_kwh=800.0, heat_gj=12.0),
        Burst(utc("2025-11-17T09:00:00"), 180, import_kwh=2500.0, export_kwh=0.0, pv_kwh=600.0,
              gas_m3=200.0, units=30.0, compressor_kwh=500.0),
    ], green_power=[{"kind": "trade", "period_start": "2025-11-01", "period_end": "2025-12-01",
                     "kwh": 1200.0, "reference": "PPA-7"}],
        # declared, so the estimated recovery is claimed as a saving
        energy={"heat_recovery": {"compressors": ["comp"], "use": "boiler_feedwater"}})
    return api_db


def _line_sums(lines: list[dict]) -> tuple[float, float, float]:
    s1 = sum(ln["tco2e_location"] for ln in lines if ln["scope"] == 1)
    s2l = sum(ln["tco2e_location"] for ln in lines if ln["scope"] == 2)
    s2m = sum(ln["tco2e_market"] for ln in lines if ln["scope"] == 2)
    return s1, s2l, s2m


def test_inventory_totals_are_line_sums_and_kpis(plant: str, api_client) -> None:
    inv = api_client.get("/api/v1/sites/sy-plant/reports/ghg-inventory",
                         params={"date": "2025-11-20"}).json()
    t = inv["totals"]
    s1, s2l, s2m = _line_sums(inv["lines"])
    assert t["scope1_t"]["value"] == pytest.approx(s1, rel=REL) and s1 > 0
    assert t["scope2_location_t"]["value"] == pytest.approx(s2l, rel=REL) and s2l > 0
    assert t["scope2_market_t"]["value"] == pytest.approx(s2m, rel=REL) and s2m > 0
    assert t["total_location_t"]["value"] == pytest.approx(s1 + s2l, rel=REL)
    assert t["total_market_t"]["value"] == pytest.approx(s1 + s2m, rel=REL)

    k = kpis_for(plant, "sy-plant", "month", date(2025, 11, 1))
    assert t["scope1_t"]["value"] == pytest.approx(k.carbon.scope1_t.value, rel=REL)
    assert t["scope2_location_t"]["value"] == pytest.approx(k.carbon.scope2_location_t.value, rel=REL)
    assert t["scope2_market_t"]["value"] == pytest.approx(k.carbon.scope2_market_t.value, rel=REL)
    assert t["scope2_location_t"]["coverage"] == pytest.approx(k.carbon.scope2_location_t.coverage)
    heat = next(ln for ln in inv["lines"] if ln["carrier"] == "heat")
    # purchased heat: 12 GJ × 0.11 tCO2/GJ in both Scope 2 figures; 12 GJ × 0.03412 tce/GJ
    assert heat["scope"] == 2 and heat["amount"] == pytest.approx(12.0, rel=REL)
    assert heat["tco2e_location"] == pytest.approx(1.32, rel=REL) == heat["tco2e_market"]
    assert heat["tce"] == pytest.approx(12.0 * 0.03412, rel=REL)
    assert inv["green_power"]["trade_kwh"]["value"] == pytest.approx(1200.0, rel=REL)
    # 2025 has no MEE data year yet: the newest (2023) stays valid, as MEE guidance says
    grid = next(f for f in inv["factors"] if f["kind"] == "grid")
    assert grid["year"] == 2023 and grid["valid_to"] is None
    assert any("self-consumed PV" in n for n in inv["notes"])


def test_inventory_csv_has_the_json_numbers(plant: str, api_client) -> None:
    params = {"period": "month", "date": "2025-11-20"}
    inv = api_client.get("/api/v1/sites/sy-plant/reports/ghg-inventory", params=params).json()
    r = api_client.get("/api/v1/sites/sy-plant/reports/ghg-inventory", params={**params, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="sy-plant-ghg-inventory-2025-11.csv"'
    sections = csv_sections(r.content)
    assert list(sections) == ["Summary", "By carrier", "Factors", "Notes"]
    summary = {row["item"]: row for row in sections["Summary"]}
    assert summary["Site"]["value"] == "sy-plant" and summary["Period"]["value"] == "2025-11"
    totals = (("Scope 1", "scope1_t"), ("Scope 2, location-based, gross import", "scope2_location_t"),
              ("Scope 2, market-based, gross import", "scope2_market_t"),
              ("Scope 2, market-based, net purchased", "scope2_market_net_t"),
              ("Scope 1+2, market-based, gross import", "scope12_market_t"))
    for item, key in totals:
        assert num(summary[item]["value"]) == inv["totals"][key]["value"]  # every digit kept
        assert summary[item]["unit"] == "tCO2e"
        assert num(summary[item]["coverage"]) == inv["totals"][key]["coverage"]
    by_carrier = {row["carrier"]: row for row in sections["By carrier"]}
    for ln in inv["lines"]:
        row = by_carrier[ln["carrier"]]
        assert num(row["amount"]) == ln["amount"]
        assert num(row["tCO2e market-based"]) == ln["tco2e_market"]
        assert num(row["tce"]) == ln["tce"]
    assert len(sections["Factors"]) == len(inv["factors"])
    assert [row["note"] for row in sections["Notes"]][:len(inv["notes"])] == inv["notes"]


def test_inventory_xlsx_summary_has_the_totals(plant: str, api_client) -> None:
    params = {"date": "2025-11-20", "format": "xlsx"}
    inv = api_client.get("/api/v1/sites/sy-plant/reports/ghg-inventory", params={"date": "2025-11-20"}).json()
    r = api_client.get("/api/v1/sites/sy-plant/reports/ghg-inventory", params=params)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert r.headers["content-disposition"] == 'attachment; filename="sy-plant-ghg-inventory-2025-11.xlsx"'
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["Summary", "By carrier", "Factors", "Notes"]
    ws = wb["Summary"]
    assert [c.value for c in ws[1]] == ["item", "value", "unit", "coverage"]
    assert all(c.font.bold for c in ws[1])
    rows = {row[0].value: row for row in ws.iter_rows(min_row=2)}
    scope1 = rows["Scope 1"][1]
    # Excel keeps 15 significant digits
    assert scope1.value == pytest.approx(inv["totals"]["scope1_t"]["value"], rel=1e-14)
    assert scope1.number_format == "#,##0.000"
    assert rows["Scope 1+2, location-based, gross import"][1].value == pytest.approx(
        inv["totals"]["scope12_location_t"]["value"], rel=1e-14)
    assert rows["Green-power trades applied"][1].value == pytest.approx(1200.0, rel=REL)
    assert rows["Scope 1"][3].number_format == "0.0%"
    assert ws.column_dimensions["A"].width >= len("Green certificates applied")
    carriers = wb["By carrier"]
    header = [c.value for c in carriers[1]]
    assert header[:4] == ["scope", "carrier", "amount", "unit"]
    amounts = {row[1].value: row[2].value for row in carriers.iter_rows(min_row=2)}
    assert amounts == {ln["carrier"]: pytest.approx(ln["amount"], rel=1e-14) for ln in inv["lines"]}


def test_energy_balance_adds_up(plant: str, api_client) -> None:
    params = {"date": "2025-11-20"}
    b = api_client.get("/api/v1/sites/sy-plant/reports/energy-balance", params=params).json()
    k = kpis_for(plant, "sy-plant", "month", date(2025, 11, 1))
    total = b["total_tce"]["value"]
    assert total == pytest.approx(k.energy.tce_total.value, rel=REL)
    # comprehensive energy consumption = Σ consumption = inputs − outputs
    assert sum(ln["tce"] for ln in b["consumption"]) == pytest.approx(total, rel=REL)
    assert sum(ln["tce"] for ln in b["inputs"]) - sum(ln["tce"] for ln in b["outputs"]) == pytest.approx(
        total, rel=REL)
    assert sum(ln["share"] for ln in b["consumption"]) == pytest.approx(1.0, rel=REL)
    inputs = {ln["item"]: ln for ln in b["inputs"]}
    assert set(inputs) == {"grid import", "PV generation", "natural gas", "purchased heat"}
    assert inputs["purchased heat"]["tce"] == pytest.approx(12.0 * 0.03412, rel=REL)
    assert inputs["grid import"]["amount"] == pytest.approx(6500.0, rel=REL)
    assert inputs["PV generation"]["amount"] == pytest.approx(1500.0, rel=REL)
    assert inputs["PV generation"]["tce"] == pytest.approx(1500.0 * 0.1229 / 1000, rel=REL)
    consumed = next(ln for ln in b["consumption"] if ln["carrier"] == "electricity")
    assert consumed["amount"] == pytest.approx(6500.0 - 150.0 + 1500.0, rel=REL)
    assert b["pv_self_consumed"]["amount"] == pytest.approx(1500.0 - 150.0, rel=REL)
    # declared on the compressor, no heat meter on the recovery loop: estimated from its energy × 0.75
    heat = b["recovered_heat"]
    assert heat["basis"] == "estimated"
    assert heat["amount"] == pytest.approx(1300.0 * 0.0036 * 0.75, rel=REL)
    assert heat["tce"] == pytest.approx(heat["amount"] * 0.03412, rel=REL)

    r = api_client.get("/api/v1/sites/sy-plant/reports/energy-balance", params={**params, "format": "csv"})
    rows = csv_sections(r.content)["Balance"]
    assert [row["section"] for row in rows].count("input") == len(b["inputs"])
    assert num(rows[0]["tce"]) == b["inputs"][0]["tce"]


def test_green_factory_indicators(plant: str, api_client) -> None:
    params = {"date": "2025-11-20"}
    g = api_client.get("/api/v1/sites/sy-plant/reports/green-factory", params=params).json()
    k = kpis_for(plant, "sy-plant", "month", date(2025, 11, 1))
    ind = {i["key"]: i for i in g["indicators"]}
    assert ind["energy_per_unit"]["unit"] == "kgce/t"
    # kgce per tonne of product = tce × 1000 ÷ 72 t
    assert ind["energy_per_unit"]["value"] == pytest.approx(k.energy.tce_total.value * 1000 / 72.0, rel=REL)
    per_unit = (k.carbon.scope1_t.value + k.carbon.scope2_market_t.value) * 1000 / 72.0
    assert ind["carbon_per_unit_market"]["value"] == pytest.approx(per_unit, rel=REL)
    assert ind["green_power_ratio"]["value"] == pytest.approx(k.electricity.green_power_ratio.value, rel=REL)
    assert ind["waste_heat_recovered"]["note"].startswith("estimated")
    assert ind["waste_heat_avoided_co2"]["value"] == pytest.approx(k.waste_heat.avoided_t_co2.value, rel=REL)
    r = api_client.get("/api/v1/sites/sy-plant/reports/green-factory", params={**params, "format": "xlsx"})
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["Summary", "Indicators", "Factors", "Notes"]
    values = {row[7].value: row[2].value for row in wb["Indicators"].iter_rows(min_row=2)}
    assert values["energy_per_unit"] == pytest.approx(ind["energy_per_unit"]["value"], rel=1e-14)


# --- a year ----------------------------------------------------------------------------------


@pytest.fixture
def year_2025(api_db: str) -> str:
    bursts = [Burst(utc(f"2025-{m:02d}-15T10:00:00"), 30, import_kwh=1000.0 + 100 * m, pv_kwh=50.0 * m,
                    gas_m3=80.0 + m, units=10.0) for m in range(1, 13)]
    seed(api_db, "yr-plant", "east", ["grid", "pv", "gas", "line"], bursts,
         green_power=[{"kind": "trade", "period_start": "2025-04-01", "period_end": "2025-07-01",
                       "kwh": 900.0}])
    return api_db


def test_annual_inventory_has_twelve_months_that_add_up(year_2025: str, api_client) -> None:
    params = {"period": "year", "date": "2025-06-30"}
    inv = api_client.get("/api/v1/sites/yr-plant/reports/ghg-inventory", params=params).json()
    assert inv["period"]["label"] == "2025"
    months = inv["monthly"]
    assert [m["month"] for m in months] == [f"2025-{m:02d}" for m in range(1, 13)]
    t = inv["totals"]
    for key in ("scope1_t", "scope2_location_t", "scope2_market_t"):
        assert sum(m[key] for m in months) == pytest.approx(t[key]["value"], rel=1e-9)
    k = kpis_for(year_2025, "yr-plant", "year", date(2025, 1, 1))
    assert sum(m["consumption_kwh"] for m in months) == pytest.approx(k.electricity.consumption_kwh.value,
                                                                      rel=1e-9)
    assert months[0]["consumption_kwh"] == pytest.approx(1100.0 + 50.0, rel=REL)
    # the trade reduces market-based Scope 2 only in the months it covers (April to June)
    s2m = {m["month"]: m["scope2_market_t"] for m in months}
    s2_unreduced = lambda month: (1000.0 + 100 * month) * 0.6096 / 1000  # noqa: E731
    assert s2m["2025-03"] == pytest.approx(s2_unreduced(3), rel=REL)
    assert s2m["2025-05"] < s2_unreduced(5)

    r = api_client.get("/api/v1/sites/yr-plant/reports/ghg-inventory", params={**params, "format": "xlsx"})
    assert r.headers["content-disposition"].endswith('filename="yr-plant-ghg-inventory-2025.xlsx"')
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["Summary", "By carrier", "Factors", "Monthly", "Notes"]
    monthly = list(wb["Monthly"].iter_rows(min_row=2, values_only=True))
    assert len(monthly) == 12
    assert sum(row[2] for row in monthly) == pytest.approx(t["scope1_t"]["value"], rel=1e-9)
    r = api_client.get("/api/v1/sites/yr-plant/reports/ghg-inventory", params={**params, "format": "csv"})
    assert len(csv_sections(r.content)["Monthly"]) == 12


# --- errors and defaults ---------------------------------------------------------------------


def test_bad_requests_name_the_field(north_east: str, api_client) -> None:
    url = "/api/v1/sites/ne-plant/reports/ghg-inventory"
    r = api_client.get(url, params={"format": "pdf"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["query.format"]
    r = api_client.get(url, params={"period": "week"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["query.period"]
    # no MEE factor is valid before 2021: an error, never a silently back-cast factor
    r = api_client.get(url, params={"date": "2019-05-01"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["query.date"]
    for report in ("ghg-inventory", "energy-balance", "green-factory"):
        r = api_client.get(f"/api/v1/sites/nowhere/reports/{report}", params={"format": "csv"})
        assert r.status_code == 404, report
        assert r.headers["content-type"] == "application/problem+json"
        assert "nowhere" in r.json()["detail"]


@pytest.mark.parametrize(("now", "label"), [
    (datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), "2026-11"),  # 23:59:59 on 30 Nov in Shanghai
    (datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "2026-12"),  # 00:30 on 1 Dec there, still 30 Nov in UTC
    (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "2027-01"),  # New Year at the site, not yet in UTC
])
def test_default_period_is_this_month_in_the_site_zone(north_east: str, api_client, now: datetime,
                                                        label: str) -> None:
    with clock.frozen(now):
        inv = api_client.get("/api/v1/sites/ne-plant/reports/ghg-inventory").json()
    assert inv["period"]["kind"] == "month"
    assert inv["period"]["label"] == label
    assert any("still running" in n for n in inv["notes"])


def test_openapi_documents_the_downloads(api_client) -> None:
    spec = api_client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/sites/{site_id}/reports/ghg-inventory"]["get"]
    content = op["responses"]["200"]["content"]
    assert {"application/json", "text/csv", XLSX} <= set(content)
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) >= {"site_id", "period", "date", "format"}
    assert params["format"]["schema"]["enum"] == ["json", "csv", "xlsx"]
    assert params["date"]["schema"]["examples"] == ["2026-11-21"]


# --- the writers on their own ----------------------------------------------------------------


def test_csv_writer_keeps_digits_and_leaves_gaps_empty() -> None:
    from lingtan.core.report_formats import Column, Num, Table, filename, to_csv

    body = to_csv([Table("Summary", [Column("item"), Column("value")],
                         [["Scope 1", Num(0.1 + 0.2, "0.000")], ["Scope 3", None], ["名称", 1]])])
    rows = csv_sections(body)["Summary"]
    assert rows == [{"item": "Scope 1", "value": repr(0.1 + 0.2)}, {"item": "Scope 3", "value": ""},
                    {"item": "名称", "value": "1"}]
    assert filename('bad"id\nx', "ghg-inventory", "2026-11", "csv") == "bad_id_x-ghg-inventory-2026-11.csv"
