"""Activity data entered by hand: the schema, the conversion to tonnes, the share a window counts,
the KPI engine's Scope 1 and tce, the API, and the GHG inventory's own rows.

Every number is worked by hand in the comment above it. Before activity data existed, a site
with these entries had a Scope 1 and tce of zero and no note about it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from lingtan.core import activity
from lingtan.core.kpi import window_kpis
from lingtan.core.site_model import import_site_file
from lingtan.core.site_schema import ActivityEntry
from lingtan.kernel.clock import frozen
from lingtan.kernel.db import get_engine
from lingtan.kernel.periods import calendar
from tests.api.test_reports import Burst, csv_sections, num, seed, utc

TZ = "Asia/Shanghai"
REL = 1e-9

# 1000 L × 0.84 kg/L = 840 kg = 0.84 t of diesel (density from the delivery note)
DIESEL = {"date": "2026-03-05", "carrier": "diesel", "amount": 1000, "unit": "L", "density_kg_per_l": 0.84,
          "evidence": "INV-0305", "note": "forklifts"}
# 1000 kg of LPG over 25 March – 3 April (period_end exclusive): 10 days, 7 of them in March
LPG = {"period_start": "2026-03-25", "period_end": "2026-04-04", "carrier": "lpg", "amount": 1, "unit": "t",
       "evidence": "ledger 2026-Q1 #12"}
# 6.5 kg of R-410A topped up; GWP 1923.5 from the library (IPCC AR5)
R410A = {"date": "2026-03-20", "carrier": "refrigerant", "gas": "R-410A", "amount": 6.5, "unit": "kg",
         "evidence": "SR-3321"}
# outside March: never in the March figures
APRIL = {"date": "2026-04-10", "carrier": "gasoline", "amount": 100, "unit": "kg", "evidence": "INV-0410"}


def entry(**kw: object) -> ActivityEntry:
    return ActivityEntry.model_validate(kw)


# --- the schema and the arithmetic, without a database ---------------------------------------


def test_diesel_by_volume_becomes_tonnes_through_its_density() -> None:
    from lingtan.core.carbon import convert

    value, unit = activity.canonical(entry(**DIESEL))
    assert (value, unit) == (pytest.approx(0.84, rel=REL), "t")
    c = convert("diesel", value, unit)
    # 0.84 t × 3.145 tCO2/t = 2.6418 tCO2; 0.84 t × 1.4571 kgce/kg = 1.223964 tce
    assert c.tco2e == pytest.approx(2.6418, rel=REL) and c.tce == pytest.approx(1.223964, rel=REL)
    # 2 m³ at 0.84 kg/L = 2000 L × 0.84 = 1680 kg; 450 kg stays 0.45 t; 300 Nm³ of gas stays 300 m³
    assert activity.canonical(entry(**{**DIESEL, "amount": 2, "unit": "m³"}))[0] == pytest.approx(1.68)
    assert activity.canonical(entry(**{**LPG, "amount": 450, "unit": "kg"})) == (pytest.approx(0.45), "t")
    gas = entry(date="2026-03-01", carrier="natural_gas", amount=300, unit="Nm³", evidence="bottle 7")
    assert activity.canonical(gas) == (pytest.approx(300.0), "m3")


@pytest.mark.parametrize(("change", "field", "says"), [
    ({"density_kg_per_l": None}, "density_kg_per_l", "needs its density in kg/L"),
    ({"density_kg_per_l": 840}, "density_kg_per_l", "0.84 kg/L"),
    ({"unit": "kWh"}, "unit", "does not measure diesel"),
    ({"unit": "barrels of fun"}, "unit", "unknown unit"),
    ({"amount": -5}, "amount", "greater than 0"),
    ({"carrier": "wood"}, "carrier", "natural_gas"),
    ({"evidence": "  "}, "evidence", "invoice"),
    ({"date": None}, "date", "period_start and period_end"),
    ({"period_start": "2026-03-01", "period_end": "2026-04-01"}, "date", "not both"),
    ({"date": None, "period_start": "2026-03-01"}, "period_end", "required with period_start"),
    ({"date": None, "period_start": "2026-03-02", "period_end": "2026-03-01"}, "period_end", "after"),
    ({"gas": "R-134a"}, "gas", "refrigerant"),
    ({"colour": "red"}, "colour", "Extra inputs"),
])
def test_bad_entries_are_refused_naming_the_field(change: dict, field: str, says: str) -> None:
    body = {k: v for k, v in {**DIESEL, **change}.items() if v is not None}
    with pytest.raises(ValidationError) as err:
        ActivityEntry.model_validate(body)
    [e] = err.value.errors()
    assert e["loc"] == (field,) and says in e["msg"]


def test_refrigerants_take_the_library_gwp_or_their_own_with_a_source() -> None:
    r = entry(**R410A)
    assert r.gwp == pytest.approx(1923.5) and "AR5" in (r.gwp_source or "")
    assert entry(**{**R410A, "gas": "hfc-134a"}).gas == "R-134a"
    own = entry(**{**R410A, "gwp": 2255.5, "gwp_source": "IPCC AR6 WG I, chapter 7"})
    assert own.gwp == 2255.5 and own.gwp_source == "IPCC AR6 WG I, chapter 7"
    for change, field in (({"gas": None}, "gas"), ({"gas": "R-22"}, "gas"), ({"gas": "R-1234ze"}, "gwp"),
                          ({"gwp": 2255.5}, "gwp_source"), ({"gwp_source": "my table"}, "gwp_source"),
                          ({"unit": "L"}, "unit")):
        body = {k: v for k, v in {**R410A, **change}.items() if v is not None}
        with pytest.raises(ValidationError) as err:
            ActivityEntry.model_validate(body)
        assert [e["loc"] for e in err.value.errors()] == [(field,)], change


def test_a_one_day_period_reads_as_its_day() -> None:
    e = entry(**{**APRIL, "date": None, "period_start": "2026-04-10", "period_end": "2026-04-11"})
    assert (e.date, e.period_start, e.period_end) == (date(2026, 4, 10), None, None)


def test_share_is_the_overlap_of_the_entry_days_with_the_window() -> None:
    lpg = entry(**LPG)
    march, april = calendar("month", date(2026, 3, 1), TZ), calendar("month", date(2026, 4, 1), TZ)
    # 25–31 March are 7 of the 10 days; 1–3 April the other 3
    assert activity.share_in(lpg, TZ, *march) == pytest.approx(0.7, rel=REL)
    assert activity.share_in(lpg, TZ, *april) == pytest.approx(0.3, rel=REL)
    diesel = entry(**DIESEL)
    assert activity.share_in(diesel, TZ, *march) == 1.0
    assert activity.share_in(diesel, TZ, *april) == 0.0
    # 06:00–18:00 local on 5 March is half of that day
    assert activity.share_in(diesel, TZ, utc("2026-03-05T06:00:00"), utc("2026-03-05T18:00:00")) == 0.5


# --- the KPI engine --------------------------------------------------------------------------


@pytest.fixture
def plant(db: str) -> str:
    """A site with no fuel meter at all: everything in Scope 1 comes from activity data."""
    with get_engine(db).begin() as conn:
        import_site_file(conn, {
            "site": {"id": "fk-plant", "name": "Forklift plant", "timezone": TZ, "grid_region": "east"},
            "activity_data": [DIESEL, LPG, R410A, APRIL],
        }, entered_by="test", now=datetime(2026, 4, 30, tzinfo=UTC))
    return db


def kpis(url: str, start: datetime, end: datetime):
    with get_engine(url).connect() as conn:
        return window_kpis(conn, "fk-plant", start, end, now=datetime(2026, 6, 1, tzinfo=UTC))


def test_march_counts_diesel_refrigerant_and_seven_tenths_of_the_lpg(plant: str) -> None:
    k = kpis(plant, *calendar("month", date(2026, 3, 1), TZ))
    # diesel 0.84 t × 3.145 = 2.6418 t; LPG 0.7 t × 2.954 = 2.0678 t; R-410A 0.0065 t × 1923.5 = 12.50275 t
    # Scope 1 = 2.6418 + 2.0678 + 12.50275 = 17.21235 t (the April gasoline is not in it)
    assert k.carbon.scope1_t.value == pytest.approx(17.21235, rel=REL)
    # tce: diesel 0.84 × 1.4571 = 1.223964; LPG 0.7 × 1.7143 = 1.20001; refrigerant none → 2.423974
    assert k.energy.tce_total.value == pytest.approx(2.423974, rel=REL)
    lines = {ln.carrier: ln for ln in k.carbon.by_carrier if ln.source == "activity data"}
    assert set(lines) == {"diesel", "lpg", "refrigerant"}
    assert lines["lpg"].amount == pytest.approx(0.7, rel=REL) and lines["lpg"].unit == "t"
    assert lines["lpg"].evidence == ["ledger 2026-Q1 #12 (70.0% of 2026-03-25 to 2026-04-03)"]
    assert lines["refrigerant"].tce is None
    assert lines["refrigerant"].evidence == ["SR-3321 (R-410A, GWP 1923.5)"]
    assert lines["diesel"].scope == 1 and lines["diesel"].evidence == ["INV-0305"]
    used = {f.key: f for f in k.factors}
    assert {"mee-2023:co2:diesel", "mee-2023:tce:diesel", "mee-2023:co2:lpg", "mee-2023:tce:lpg",
            "gwp:R-410A:1923.5"} <= set(used)
    assert "AR5" in used["gwp:R-410A:1923.5"].source
    [note] = [n for n in k.notes if n.startswith("Activity data")]
    assert "3 entries" in note and "(diesel, lpg, refrigerant)" in note and "1 of them only in part" in note
    assert "AR5" in note and "no tce" in note


def test_april_counts_the_rest_of_the_lpg_and_the_gasoline(plant: str) -> None:
    k = kpis(plant, *calendar("month", date(2026, 4, 1), TZ))
    # LPG 0.3 t × 2.954 = 0.8862 t; gasoline 0.1 t × 3.043 = 0.3043 t → 1.1905 t
    assert k.carbon.scope1_t.value == pytest.approx(1.1905, rel=REL)
    # LPG 0.3 × 1.7143 = 0.51429; gasoline 0.1 × 1.4714 = 0.14714 → 0.66143 tce
    assert k.energy.tce_total.value == pytest.approx(0.66143, rel=REL)


def test_a_window_without_entries_counts_none_and_says_nothing(plant: str) -> None:
    k = kpis(plant, *calendar("month", date(2026, 2, 1), TZ))
    assert k.carbon.scope1_t.value == 0.0 and k.energy.tce_total.value == 0.0
    assert not [ln for ln in k.carbon.by_carrier if ln.source == "activity data"]
    assert not [n for n in k.notes if n.startswith("Activity data")]


def test_a_rolling_window_counts_its_part_of_the_day(plant: str) -> None:
    # 06:00–18:00 local on 5 March: half the day's 0.84 t = 0.42 t × 3.145 = 1.3209 t
    k = kpis(plant, utc("2026-03-05T06:00:00"), utc("2026-03-05T18:00:00"))
    assert k.carbon.scope1_t.value == pytest.approx(1.3209, rel=REL)


def test_a_period_across_new_year_is_counted_whole_in_a_window_across_it(db: str) -> None:
    with get_engine(db).begin() as conn:
        import_site_file(conn, {
            "site": {"id": "fk-plant", "name": "Forklift plant", "timezone": TZ},
            # 2 t of fuel oil over 27 Dec – 5 Jan (10 days): 5 in 2025, 5 in 2026
            "activity_data": [{"period_start": "2025-12-27", "period_end": "2026-01-06",
                               "carrier": "fuel_oil", "amount": 2, "unit": "t", "evidence": "INV-Y2"}],
        })
    a, _ = calendar("month", date(2025, 12, 1), TZ)
    _, b = calendar("month", date(2026, 1, 1), TZ)
    # 2 t × 3.047 tCO2/t = 6.094 t, 2 t × 1.4286 kgce/kg = 2.8572 tce, in two pieces of 1 t
    k = kpis(db, a, b)
    assert k.carbon.scope1_t.value == pytest.approx(6.094, rel=REL)
    assert k.energy.tce_total.value == pytest.approx(2.8572, rel=REL)
    [line] = [ln for ln in k.carbon.by_carrier if ln.source == "activity data"]
    assert line.amount == pytest.approx(2.0, rel=REL) and line.evidence == ["INV-Y2"]
    dec = kpis(db, *calendar("month", date(2025, 12, 1), TZ))
    assert dec.carbon.scope1_t.value == pytest.approx(3.047, rel=REL)


def test_a_boiler_meter_on_diesel_is_named_as_not_counted(db: str) -> None:
    with get_engine(db).begin() as conn:
        import_site_file(conn, {
            "site": {"id": "fk-plant", "name": "Forklift plant", "timezone": TZ},
            "meters": [{"id": "oil-boiler", "role": "boiler_fuel", "params": {"fuel": "diesel"}}],
        })
    k = kpis(db, *calendar("month", date(2026, 3, 1), TZ))
    assert any("oil-boiler burns diesel" in n and "activity data" in n for n in k.notes)


# --- the API ---------------------------------------------------------------------------------


@pytest.fixture
def site(api_db: str, api_client) -> str:
    with get_engine(api_db).begin() as conn:
        import_site_file(conn, {"site": {"id": "fk-plant", "name": "Forklift plant", "timezone": TZ}})
    return "/api/v1/sites/fk-plant/activity-data"


def test_enter_list_and_delete_through_the_api(site: str, api_client, auth_headers) -> None:
    engineer = auth_headers("engineer")
    at = datetime(2026, 3, 6, 1, 2, 3, tzinfo=UTC)
    with frozen(at):
        r = api_client.post(site, json=DIESEL, headers=engineer)
    assert r.status_code == 201, r.text
    diesel = r.json()
    assert diesel["id"] > 0 and diesel["entered_by"].startswith("api key ")
    assert diesel["entered_by"].endswith("(test engineer)")
    assert datetime.fromisoformat(diesel["entered_at"]) == at
    assert diesel["amount_canonical"] == pytest.approx(0.84) and diesel["unit_canonical"] == "t"
    assert api_client.post(site, json=R410A, headers=engineer).status_code == 201

    page = api_client.get(site, params={"limit": 1}).json()
    assert page["total"] == 2 and page["limit"] == 1
    assert [e["evidence"] for e in page["items"]] == ["INV-0305"]
    second = api_client.get(site, params={"limit": 1, "offset": 1}).json()["items"]
    assert second[0]["gas"] == "R-410A" and second[0]["gwp"] == pytest.approx(1923.5)

    again = api_client.post(site, json=DIESEL, headers=engineer)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert f"entry {diesel['id']}" in again.json()["detail"]

    assert api_client.post(site, json=LPG).status_code == 403  # the client's own key is a viewer
    assert api_client.delete(f"{site}/{diesel['id']}").status_code == 403
    assert api_client.delete(f"{site}/{diesel['id']}", headers=engineer).status_code == 204
    assert api_client.get(site).json()["total"] == 1
    assert api_client.delete(f"{site}/{diesel['id']}", headers=engineer).status_code == 404
    assert api_client.get("/api/v1/sites/nowhere/activity-data").status_code == 404
    nowhere = api_client.post("/api/v1/sites/nowhere/activity-data", json=LPG, headers=engineer)
    assert nowhere.status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"density_kg_per_l": None}, "body.density_kg_per_l"),
    ({"unit": "kWh"}, "body.unit"),
    ({"amount": 0}, "body.amount"),
    ({"date": "2026-02-30"}, "body.date"),
    ({"carrier": "refrigerant", "unit": "kg", "density_kg_per_l": None}, "body.gas"),
])
def test_api_names_the_bad_field(site: str, api_client, auth_headers, change: dict, field: str) -> None:
    body = {k: v for k, v in {**DIESEL, **change}.items() if v is not None}
    r = api_client.post(site, json=body, headers=auth_headers("engineer"))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert api_client.get(site).json()["total"] == 0


def test_openapi_documents_the_routes(api_client) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]
    post = paths["/api/v1/sites/{site_id}/activity-data"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert {"diesel", "lpg", "refrigerant"} <= set(examples)
    for ex in examples.values():
        ActivityEntry.model_validate(ex["value"])  # every example is a valid entry
    assert "delete" in paths["/api/v1/sites/{site_id}/activity-data/{entry_id}"]


# --- the GHG inventory -----------------------------------------------------------------------


@pytest.fixture
def metered(api_db: str, api_client, auth_headers) -> str:
    """March 2026 in East China: 1000 m³ of metered gas, and diesel, LPG and R-410A entered by hand."""
    seed(api_db, "fk-plant", "east", ["grid", "gas"],
         [Burst(utc("2026-03-10T10:00:00"), 60, import_kwh=10_000.0, gas_m3=1000.0)])
    engineer = auth_headers("engineer")
    for body in (DIESEL, LPG, R410A, APRIL):
        r = api_client.post("/api/v1/sites/fk-plant/activity-data", json=body, headers=engineer)
        assert r.status_code == 201, r.text
    return api_db


def test_inventory_shows_activity_data_as_its_own_rows(metered: str, api_client) -> None:
    params = {"period": "month", "date": "2026-03-15"}
    inv = api_client.get("/api/v1/sites/fk-plant/reports/ghg-inventory", params=params).json()
    rows = {(ln["source"], ln["carrier"]): ln for ln in inv["lines"]}
    assert set(rows) == {("meters", "electricity"), ("meters", "natural_gas"), ("activity data", "diesel"),
                         ("activity data", "lpg"), ("activity data", "refrigerant")}
    # metered gas: 1000 m³ × 21.62 tCO2/10⁴Nm³ = 2.162 t, on its own row
    assert rows[("meters", "natural_gas")]["tco2e_location"] == pytest.approx(2.162, rel=REL)
    assert rows[("meters", "natural_gas")]["evidence"] == []
    diesel = rows[("activity data", "diesel")]
    assert diesel["scope"] == 1 and diesel["amount"] == pytest.approx(0.84, rel=REL)
    assert diesel["tco2e_location"] == pytest.approx(2.6418, rel=REL) == diesel["tco2e_market"]
    assert diesel["evidence"] == ["INV-0305"]
    assert rows[("activity data", "refrigerant")]["tco2e_location"] == pytest.approx(12.50275, rel=REL)
    # Scope 1 = gas 2.162 + diesel 2.6418 + LPG 2.0678 + R-410A 12.50275 = 19.37435 t
    assert inv["totals"]["scope1_t"]["value"] == pytest.approx(19.37435, rel=REL)
    s1 = sum(ln["tco2e_location"] for ln in inv["lines"] if ln["scope"] == 1)
    assert s1 == pytest.approx(inv["totals"]["scope1_t"]["value"], rel=REL)
    assert any(n.startswith("Activity data: 3 entries") for n in inv["notes"])
    assert any("HFCs of refrigerant top-ups" in n for n in inv["notes"])
    assert not any(n.startswith("CO2 only") for n in inv["notes"])
    assert any(f["key"] == "gwp:R-410A:1923.5" for f in inv["factors"])

    sections = csv_sections(api_client.get("/api/v1/sites/fk-plant/reports/ghg-inventory",
                                           params={**params, "format": "csv"}).content)
    csv_rows = {(r["source"], r["carrier"]): r for r in sections["By carrier"]}
    lpg = csv_rows[("activity data", "lpg")]
    assert lpg["evidence"] == "ledger 2026-Q1 #12 (70.0% of 2026-03-25 to 2026-04-03)"
    assert num(lpg["tCO2e location-based"]) == rows[("activity data", "lpg")]["tco2e_location"]


def test_energy_balance_counts_the_fuel_but_not_the_refrigerant(metered: str, api_client) -> None:
    b = api_client.get("/api/v1/sites/fk-plant/reports/energy-balance",
                       params={"period": "month", "date": "2026-03-01"}).json()
    items = {ln["item"]: ln for ln in b["consumption"]}
    assert "diesel (activity data)" in items and "lpg (activity data)" in items
    assert not [i for i in items if "refrigerant" in i]
    assert items["diesel (activity data)"]["note"] == "INV-0305"
    # 10 000 kWh × 0.1229 = 1.229; gas 1000 Nm³ × 38.931 MJ ÷ 29.3076 MJ/kgce = 1.3283585 (the site's one
    # heating value); diesel 1.223964; LPG 1.20001 → 4.9813325 tce
    assert b["total_tce"]["value"] == pytest.approx(1.229 + 38.931 / 29.3076 + 1.223964 + 1.20001, rel=REL)
    assert sum(ln["tce"] for ln in b["consumption"]) == pytest.approx(b["total_tce"]["value"], rel=REL)
