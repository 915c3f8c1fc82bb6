"""The site energy model through the real app and a real database: sites, meters, green power,
factor overrides, whole-file import, and the model the KPI engine loads."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lingtan.core import queries
from lingtan.core.factors import factor
from lingtan.core.keys import create_key
from lingtan.core.site_model import load_site_model
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.settings import get_settings

SITE_FILE: dict[str, Any] = {
    "site": {"id": "plant-a", "name": "Plant A", "timezone": "Asia/Shanghai",
             "grid_region": "north_east", "factor_set": "mee-2023"},
    "energy": {"boiler_efficiency": 0.9, "gas_price_cny_per_m3": 3.6,
               "tariff": {"flat_cny_per_kwh": 0.65}},
    "meters": [
        {"id": "a-grid", "role": "grid_import"},
        {"id": "a-comp", "role": "compressor", "name": "Compressor",
         "params": {"compressor": {"rated_kw": 75, "pressure_mpa": 0.8}}},
        {"id": "a-boiler", "role": "boiler_fuel", "params": {"fuel": "natural_gas"}},
    ],
    "green_power": [
        {"kind": "gec", "period_start": "2026-11-01", "period_end": "2026-12-01", "certificates": 40},
        {"kind": "trade", "period_start": "2026-11-01", "period_end": "2026-12-01", "kwh": 60000},
    ],
    "factor_overrides": [
        {"kind": "grid", "subject": "north_east", "value": 0.5, "unit": "kgCO2/kWh",
         "source": "provincial notice (test)", "valid_from": "2026-01-01", "valid_to": "2026-12-31"},
        {"kind": "grid", "subject": "north_east", "value": 0.48, "unit": "kgCO2/kWh",
         "source": "provincial notice 2027 (test)", "valid_from": "2027-01-01"},
    ],
}


@pytest.fixture
def site_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The session database without sites (meters, purchases and overrides go with them) or keys."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("TRUNCATE sites, api_keys CASCADE")
    monkeypatch.setenv("LINGTAN_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.fixture
def key(site_db: str) -> Callable[[str], dict[str, str]]:
    def make(role: str) -> dict[str, str]:
        with get_engine(site_db).begin() as conn:
            _, plain = create_key(conn, role, f"test {role}")
        return {"Authorization": f"Bearer {plain}"}

    return make


@pytest.fixture
def client(key: Callable[[str], dict[str, str]]) -> TestClient:
    """Sends an engineer key; tests of roles pass their own headers."""
    return TestClient(create_app(), headers=key("engineer"))


def add_meter(db: str, meter_id: str, site_id: str) -> None:
    """A meter as a gateway registers it: no role, no params."""
    with psycopg.connect(libpq_url(db)) as conn:
        conn.execute("INSERT INTO meters (id, site_id, name) VALUES (%s, %s, %s)",
                     (meter_id, site_id, meter_id))


def test_put_creates_then_replaces_a_site(client: TestClient):
    r = client.put("/api/v1/sites/plant-b", json={"name": "Plant B", "grid_region": "east",
                                                  "params": {"gas_price_cny_per_m3": 3.2}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["name"], body["timezone"], body["grid_region"], body["factor_set"]) == (
        "Plant B", "Asia/Shanghai", "east", "mee-2023")
    assert body["params"]["gas_price_cny_per_m3"] == 3.2 and body["params"]["boiler_efficiency"] == 0.92

    r = client.put("/api/v1/sites/plant-b", json={"name": "Plant B2", "factor_set": "mee-2022"})
    assert r.status_code == 200, r.text
    model = client.get("/api/v1/sites/plant-b/model").json()
    assert model["name"] == "Plant B2" and model["factor_set"] == "mee-2022"
    assert model["params"]["gas_price_cny_per_m3"] is None  # PUT replaces: omitted means default
    assert client.get("/api/v1/sites/plant-b").json()["name"] == "Plant B2"  # the existing read route


@pytest.mark.parametrize(("field", "value"), [
    ("timezone", "Asia/Shenyang"), ("grid_region", "liaoning"), ("factor_set", "mee-2019")])
def test_put_names_the_bad_field(client: TestClient, field: str, value: str):
    r = client.put("/api/v1/sites/plant-b", json={"name": "Plant B", field: value})
    assert r.status_code == 422
    assert field in r.text
    assert client.get("/api/v1/sites/plant-b/model").status_code == 404


def test_meter_role_and_params_must_fit(client: TestClient, site_db: str):
    client.put("/api/v1/sites/plant-b", json={"name": "Plant B"})
    add_meter(site_db, "b-comp", "plant-b")
    spec = {"compressor": {"rated_kw": 37, "pressure_mpa": 0.7}}

    r = client.patch("/api/v1/meters/b-comp", json={"role": "compressor", "params": spec})
    assert r.status_code == 200, r.text
    full_spec = {"rated_kw": 37.0, "pressure_mpa": 0.7, "kind": "oil_injected_screw", "speed": "fixed",
                 "cooling": "air", "gb19153_limits": None}
    assert r.json() == {"id": "b-comp", "name": "b-comp", "role": "compressor", "params": {
        "fuel": None, "heat_carrier": None, "boiler_output": None, "rated_power_kw": None,
        "counter_wrap": None, "exchanges": [], "compressor": full_spec}}

    r = client.patch("/api/v1/meters/b-comp", json={"params": {"fuel": "diesel"}})
    assert r.status_code == 422 and "params.fuel" in r.text and "boiler_fuel" in r.text
    r = client.patch("/api/v1/meters/b-comp", json={"role": "boiler_fuel"})  # params still a compressor's
    assert r.status_code == 422 and "role" in r.text and "compressor" in r.text
    negative = {"compressor": {"rated_kw": -1, "pressure_mpa": 1}}
    r = client.patch("/api/v1/meters/b-comp", json={"params": negative})
    assert r.status_code == 422 and "rated_kw" in r.text

    r = client.patch("/api/v1/meters/b-comp", json={"name": "Screw 2"})  # name only: role and params kept
    assert r.status_code == 200 and r.json()["role"] == "compressor"
    meters = client.get("/api/v1/sites/plant-b/model").json()["meters"]
    assert [(m["name"], m["params"]["compressor"]["rated_kw"]) for m in meters] == [("Screw 2", 37.0)]
    assert client.patch("/api/v1/meters/nope", json={"name": "x"}).status_code == 404


def test_green_purchases_add_list_delete(client: TestClient):
    client.put("/api/v1/sites/plant-b", json={"name": "Plant B"})
    url = "/api/v1/sites/plant-b/green-purchases"
    r = client.post(url, json={"kind": "gec", "period_start": "2026-11-01", "period_end": "2026-12-01",
                               "certificates": 40, "reference": "order 7"})
    assert r.status_code == 201, r.text
    gec = r.json()
    assert gec["certificates"] == 40 and gec["kwh"] is None and gec["id"] > 0

    bad = client.post(url, json={"kind": "gec", "period_start": "2026-11-01", "period_end": "2026-12-01",
                                 "kwh": 40000})
    assert bad.status_code == 422 and "certificates" in bad.text
    backwards = client.post(url, json={"kind": "trade", "period_start": "2026-12-01",
                                       "period_end": "2026-11-01", "kwh": 1})
    assert backwards.status_code == 422 and "period_end" in backwards.text

    assert [p["id"] for p in client.get(url).json()["items"]] == [gec["id"]]
    assert client.delete(f"{url}/{gec['id']}").status_code == 204
    assert client.get(url).json()["items"] == []
    assert client.delete(f"{url}/{gec['id']}").status_code == 404
    assert client.get("/api/v1/sites/nowhere/green-purchases").status_code == 404


def test_factor_overrides_are_checked_against_the_factor_set(client: TestClient):
    client.put("/api/v1/sites/plant-b", json={"name": "Plant B", "grid_region": "north_east"})
    url = "/api/v1/sites/plant-b/factor-overrides"
    good = {"kind": "grid", "subject": "north_east", "value": 0.5, "unit": "kgCO2/kWh",
            "source": "provincial notice", "valid_from": "2026-01-01"}
    r = client.post(url, json=good)
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["value"] == 0.5 and stored["valid_to"] is None

    wrong_unit = client.post(url, json={**good, "unit": "tCO2/MWh", "valid_from": "2027-01-01"})
    assert wrong_unit.status_code == 422 and "unit" in wrong_unit.text and "kgCO2/kWh" in wrong_unit.text
    unknown = client.post(url, json={**good, "subject": "liaoning"})
    assert unknown.status_code == 422 and "subject" in unknown.text and "north_east" in unknown.text
    residual = client.post(url, json={**good, "kind": "grid_residual", "subject": "north_east"})
    assert residual.status_code == 422 and "national" in residual.text
    no_source = client.post(url, json={**good, "source": "  "})
    assert no_source.status_code == 422 and "source" in no_source.text
    overlap = client.post(url, json={**good, "valid_from": "2026-06-01"})  # the first has no end
    assert overlap.status_code == 422 and "valid_from" in overlap.text
    assert client.post(url, json={**good, "kind": "nuclear"}).status_code == 422

    gas = {"kind": "co2", "subject": "natural_gas", "value": 21.4, "unit": "tCO2/10^4 Nm3",
           "source": "supplier gas analysis"}
    assert client.post(url, json=gas).status_code == 201
    assert [(o["kind"], o["subject"]) for o in client.get(url).json()["items"]] == [
        ("co2", "natural_gas"), ("grid", "north_east")]
    assert client.delete(f"{url}/{stored['id']}").status_code == 204
    assert client.delete(f"{url}/{stored['id']}").status_code == 404
    assert [o["kind"] for o in client.get(url).json()["items"]] == ["co2"]


def test_import_creates_the_model_and_again_changes_nothing(client: TestClient):
    r = client.post("/api/v1/sites/plant-a/import", json=SITE_FILE)
    assert r.status_code == 201, r.text
    result = r.json()
    assert result["site_created"] and result["meters_created"] == ["a-grid", "a-comp", "a-boiler"]
    assert (result["green_purchases_added"], result["factor_overrides_added"]) == (2, 2)
    first = client.get("/api/v1/sites/plant-a/model").json()

    r = client.post("/api/v1/sites/plant-a/import", json=SITE_FILE)
    assert r.status_code == 200, r.text
    again = r.json()
    assert not again["site_created"] and again["meters_created"] == []
    assert (again["green_purchases_added"], again["green_purchases_removed"]) == (0, 0)
    assert (again["factor_overrides_added"], again["factor_overrides_removed"]) == (0, 0)
    assert client.get("/api/v1/sites/plant-a/model").json() == first  # ids included

    meters = {m["id"]: m for m in first["meters"]}
    assert meters["a-grid"]["name"] == "a-grid"  # created without a name: named after its id
    assert meters["a-comp"]["params"]["compressor"]["rated_kw"] == 75
    assert first["params"]["boiler_efficiency"] == 0.9
    assert sorted(p["kind"] for p in first["green_purchases"]) == ["gec", "trade"]


def test_import_replaces_purchases_and_overrides_and_keeps_unlisted_meters(client: TestClient, site_db: str):
    client.post("/api/v1/sites/plant-a/import", json=SITE_FILE)
    add_meter(site_db, "a-gateway-only", "plant-a")
    before = {p["kind"]: p["id"] for p in client.get("/api/v1/sites/plant-a/green-purchases").json()["items"]}
    changed = copy.deepcopy(SITE_FILE)
    changed["green_power"][1]["kwh"] = 70000  # the trade changes, the certificates stay
    changed["factor_overrides"] = []
    changed["meters"][0]["name"] = "Grid incomer"
    r = client.post("/api/v1/sites/plant-a/import", json=changed)
    assert r.status_code == 200, r.text
    assert (r.json()["green_purchases_added"], r.json()["green_purchases_removed"]) == (1, 1)
    assert r.json()["factor_overrides_removed"] == 2

    model = client.get("/api/v1/sites/plant-a/model").json()
    purchases = {p["kind"]: p for p in model["green_purchases"]}
    assert purchases["gec"]["id"] == before["gec"] and purchases["trade"]["id"] != before["trade"]
    assert purchases["trade"]["kwh"] == 70000 and model["factor_overrides"] == []
    names = {m["id"]: m["name"] for m in model["meters"]}
    assert names["a-grid"] == "Grid incomer" and "a-gateway-only" in names


def test_a_failed_import_leaves_the_previous_state(client: TestClient, site_db: str):
    client.post("/api/v1/sites/plant-a/import", json=SITE_FILE)
    before = client.get("/api/v1/sites/plant-a/model").json()

    bad_purchase = copy.deepcopy(SITE_FILE)
    bad_purchase["site"]["name"] = "Renamed"
    bad_purchase["green_power"].append({"kind": "trade", "period_start": "2026-12-01",
                                        "period_end": "2027-01-01", "certificates": 5})
    r = client.post("/api/v1/sites/plant-a/import", json=bad_purchase)
    assert r.status_code == 422 and "green_power" in r.text

    # Found only while writing, after the site row was already updated: the savepoint undoes it.
    client.put("/api/v1/sites/plant-c", json={"name": "Plant C"})
    add_meter(site_db, "c-meter", "plant-c")
    foreign_meter = copy.deepcopy(bad_purchase)
    foreign_meter["green_power"].pop()
    foreign_meter["meters"].append({"id": "c-meter", "role": "load"})
    r = client.post("/api/v1/sites/plant-a/import", json=foreign_meter)
    assert r.status_code == 409 and "meters.3.id" in r.text and "plant-c" in r.text

    wrong_role = copy.deepcopy(bad_purchase)
    wrong_role["green_power"].pop()
    wrong_role["meters"][0]["params"] = {"fuel": "natural_gas"}  # on the grid incomer
    r = client.post("/api/v1/sites/plant-a/import", json=wrong_role)
    assert r.status_code == 422 and "meters.0.params.fuel" in r.text

    assert client.get("/api/v1/sites/plant-a/model").json() == before


def test_import_url_and_file_must_name_the_same_site(client: TestClient):
    r = client.post("/api/v1/sites/other/import", json=SITE_FILE)
    assert r.status_code == 422 and "site.id" in r.text
    assert client.get("/api/v1/sites/other/model").status_code == 404


def test_reads_need_a_viewer_and_writes_an_engineer(site_db: str, key: Callable[[str], dict[str, str]]):
    app = TestClient(create_app())
    engineer, viewer = key("engineer"), key("viewer")
    assert app.post("/api/v1/sites/plant-a/import", json=SITE_FILE, headers=engineer).status_code == 201
    assert app.get("/api/v1/sites/plant-a/model", headers=viewer).status_code == 200
    assert app.get("/api/v1/sites/plant-a/model").status_code == 401
    writes = [
        ("put", "/api/v1/sites/plant-a", {"name": "x"}),
        ("patch", "/api/v1/meters/a-grid", {"name": "x"}),
        ("post", "/api/v1/sites/plant-a/green-purchases", SITE_FILE["green_power"][0]),
        ("post", "/api/v1/sites/plant-a/factor-overrides", SITE_FILE["factor_overrides"][0]),
        ("post", "/api/v1/sites/plant-a/import", SITE_FILE),
    ]
    for method, url, body in writes:
        r = app.request(method, url, json=body, headers=viewer)
        assert r.status_code == 403, (method, url, r.text)
    assert app.delete("/api/v1/sites/plant-a/green-purchases/1", headers=viewer).status_code == 403
    assert app.get("/api/v1/sites/plant-a/model", headers=viewer).json()["name"] == "Plant A"


def test_load_site_model_gives_the_kpi_engine_what_it_needs(client: TestClient, site_db: str):
    client.post("/api/v1/sites/plant-a/import", json=SITE_FILE)
    with get_engine(site_db).connect() as conn:
        model = load_site_model(conn, "plant-a")
        with pytest.raises(queries.NotFound):
            load_site_model(conn, "nowhere")
    assert model.site == queries.Site("plant-a", "Plant A", "Asia/Shanghai", "north_east")
    assert model.factor_set == "mee-2023" and model.params.gas_price_cny_per_m3 == 3.6
    [comp] = model.meters_with_role("compressor")
    assert comp.id == "a-comp" and comp.params.compressor is not None
    assert comp.params.compressor.rated_kw == 75
    assert model.meters_with_role("pv_generation") == []
    assert sorted(p.green_kwh for p in model.purchases) == [40_000.0, 60_000.0]

    overrides = model.overrides_for(2026)
    grid = overrides["grid:north_east"]
    assert (grid.value, grid.unit, grid.source) == (0.5, "kgCO2/kWh", "provincial notice (test)")
    assert grid.key == "override:plant-a:grid:north_east"
    assert model.overrides_for(2025) == {}  # valid from 2026 only
    assert model.overrides_for(2030)["grid:north_east"].value == 0.48  # the 2027 one has no end
    # The factor library takes the mapping as it is.
    assert factor("mee-2023", "grid", "north_east", 2026, overrides).value == 0.5
    assert factor("mee-2023", "grid", "north_east", 2025, model.overrides_for(2025)).value == 0.5122


def test_openapi_documents_the_routes_with_examples(client: TestClient):
    spec = client.get("/openapi.json").json()
    put = spec["paths"]["/api/v1/sites/{site_id}"]["put"]
    assert put["tags"] == ["site model"] and put["summary"]
    assert put["requestBody"]["content"]["application/json"]["examples"]
    for path, method in [("/api/v1/sites/{site_id}/import", "post"),
                         ("/api/v1/sites/{site_id}/green-purchases", "post"),
                         ("/api/v1/sites/{site_id}/factor-overrides", "post"),
                         ("/api/v1/meters/{meter_id}", "patch")]:
        assert spec["paths"][path][method]["requestBody"]["content"]["application/json"]["examples"], path
    assert "get" in spec["paths"]["/api/v1/sites/{site_id}/model"]


def test_a_meter_exchange_is_checked_field_by_field(client: TestClient, site_db: str) -> None:
    client.put("/api/v1/sites/plant-b", json={"name": "Plant B"})
    add_meter(site_db, "b-grid", "plant-b")
    bad = [({"time": "2026-11-14T11:20:00", "quantity": "active_energy_import", "old_final": 5.0},
            "params.exchanges.0.time", "UTC offset"),
           ({"time": "2026-11-14T11:20:00+08:00", "quantity": "active_power", "old_final": 5.0},
            "params.exchanges.0.quantity", "not a counter"),
           ({"time": "2026-11-14T11:20:00+08:00", "quantity": "active_energy_import", "old_final": -1},
            "params.exchanges.0.old_final", "greater than or equal to 0")]
    for exchange, field, words in bad:
        r = client.patch("/api/v1/meters/b-grid", json={"params": {"exchanges": [exchange]}})
        assert r.status_code == 422, r.text
        assert field in r.text and words in r.text, r.text
    good = {"time": "2026-11-14T11:20:00+08:00", "quantity": "active_energy_import", "old_final": 5.0}
    r = client.patch("/api/v1/meters/b-grid", json={"params": {"exchanges": [good, good]}})
    assert r.status_code == 422 and "two exchanges" in r.text
    r = client.patch("/api/v1/meters/b-grid", json={"params": {"exchanges": [good]}})
    assert r.status_code == 200, r.text
    assert r.json()["params"]["exchanges"] == [{**good, "new_initial": 0.0}]
