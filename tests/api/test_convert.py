"""POST /api/v1/carbon/convert and GET /api/v1/factors, against hand-worked examples (docs/domain.md)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.routes.carbon import ConvertRequest
from lingtan.core import carbon


@pytest.fixture
def client(api_client):
    return api_client


def convert(client, **body):
    r = client.post("/api/v1/carbon/convert", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def keys(body):
    return [f["key"] for f in body["factors"]]


def test_electricity_north_east_2023(client):
    # 1000 kWh × 0.5122 kgCO2/kWh = 512.2 kg; × 0.1229 kgce/kWh = 122.9 kgce
    b = convert(client, carrier="electricity", amount=1000, unit="kWh", region="north_east", year=2023)
    assert b["tco2e"] == pytest.approx(0.5122) and b["tce"] == pytest.approx(0.1229)
    assert keys(b) == ["mee-2023:grid:north_east:2023", "mee-2023:tce:electricity"]
    assert all(f["source"] for f in b["factors"])
    assert b["amount_canonical"] == {"value": 1000.0, "unit": "kWh"}


def test_units_convert_with_pint(client):
    b = convert(client, carrier="electricity", amount=1, unit="MWh", region="north_east")
    assert b["amount_canonical"]["value"] == pytest.approx(1000) and b["tco2e"] == pytest.approx(0.5122)
    b = convert(client, carrier="diesel", amount=1000, unit="kg")
    assert b["tco2e"] == pytest.approx(3.145) and b["tce"] == pytest.approx(1.4571)
    b = convert(client, carrier="heat", amount=1000, unit="MJ")
    assert b["tco2e"] == pytest.approx(0.11) and b["tce"] == pytest.approx(0.03412)


def test_year_2022_picks_the_2022_factor(client):
    b = convert(client, carrier="electricity", amount=1000, unit="kWh", region="north_east", year=2022)
    assert b["tco2e"] == pytest.approx(0.5564) and b["factors"][0]["year"] == 2022
    # a later year uses the newest data year in the set (2023)
    b = convert(client, carrier="electricity", amount=1000, unit="kWh", region="north_east", year=2026)
    assert b["factors"][0]["year"] == 2023
    b = convert(client, carrier="electricity", amount=1000, unit="kWh", region="north_east",
                factor_set="mee-2022")
    assert b["tco2e"] == pytest.approx(0.5564)


def test_market_based_uses_the_residual_mix(client):
    b = convert(client, carrier="electricity", amount=1000, unit="kWh", basis="market")
    assert b["tco2e"] == pytest.approx(0.6096) and keys(b)[0] == "mee-2023:grid_residual:national:2023"
    b = convert(client, carrier="electricity", amount=1000, unit="kWh", basis="market", year=2021)
    assert b["tco2e"] == pytest.approx(0.5942)


def test_no_region_is_national_with_a_note(client):
    b = convert(client, carrier="electricity", amount=1000, unit="kWh")
    assert b["tco2e"] == pytest.approx(0.5306) and any("national" in n for n in b["notes"])


@pytest.mark.parametrize("unit", ["m3", "Nm3"])
def test_natural_gas(client, unit):
    # 10 000 m³ × 21.62 tCO2/10⁴Nm³ = 21.62 t; × 1.2143 kgce/m³ = 12.143 tce
    b = convert(client, carrier="natural_gas", amount=10_000, unit=unit)
    assert b["tco2e"] == pytest.approx(21.62) and b["tce"] == pytest.approx(12.143)
    assert "gas-field" in b["factors"][1]["source"]


def test_steam_both_conventions(client):
    # 1 t × 2.6796 GJ/t = 2.6796 GJ; × 0.11 = 0.29476 tCO2; × 0.03412 = 0.0914 tce
    b = convert(client, carrier="steam", amount=1, unit="t")
    assert b["tco2e"] == pytest.approx(0.29476, abs=1e-5) and b["tce"] == pytest.approx(0.0914, abs=1e-4)
    t = convert(client, carrier="steam", amount=1000, unit="kg", steam_convention="table")
    assert t["tco2e"] == pytest.approx(b["tco2e"]) and t["tce"] == pytest.approx(0.1286)
    assert t["tce"] / b["tce"] == pytest.approx(1.41, abs=0.01)  # docs/domain.md: "about 41 % more"
    assert "mee-2023:tce:steam" in keys(t) and "mee-2023:tce:heat" in keys(b)


def test_tce_only_carriers(client):
    b = convert(client, carrier="coke", amount=1, unit="t")
    assert b["tco2e"] is None and b["tce"] == pytest.approx(0.9714) and b["notes"]


def test_fuel_oil_and_raw_coal_have_co2_factors(client):
    # 2 t fuel oil × 3.047 tCO2/t = 6.094 t; × 1.4286 kgce/kg = 2.8572 tce
    b = convert(client, carrier="fuel_oil", amount=2, unit="t")
    assert b["tco2e"] == pytest.approx(6.094) and b["tce"] == pytest.approx(2.8572)
    assert keys(b) == ["mee-2023:co2:fuel_oil", "mee-2023:tce:fuel_oil"]
    # 500 kg raw coal × 1.900 tCO2/t = 0.95 t; × 0.7143 kgce/kg = 0.35715 tce
    b = convert(client, carrier="raw_coal", amount=500, unit="kg")
    assert b["tco2e"] == pytest.approx(0.95) and b["tce"] == pytest.approx(0.35715)


def test_volumes_written_with_superscripts(client):
    # pint alone reads "Nm³" as newton-metre cubed; 100 Nm³ × 21.62 tCO2/10⁴Nm³ = 0.2162 t
    b = convert(client, carrier="natural_gas", amount=100, unit="Nm³")
    assert b["amount_canonical"] == {"value": 100.0, "unit": "m3"} and b["tco2e"] == pytest.approx(0.2162)


def test_zero_amount(client):
    b = convert(client, carrier="lpg", amount=0, unit="t")
    assert b["tco2e"] == 0 and b["tce"] == 0


@pytest.mark.parametrize(("body", "field", "mention"), [
    ({"carrier": "wood", "amount": 1, "unit": "t"}, "carrier", "natural_gas"),
    ({"carrier": "diesel", "amount": -1, "unit": "t"}, "amount", ""),
    ({"carrier": "natural_gas", "amount": 1, "unit": "kWh"}, "unit", "kWh"),
    ({"carrier": "diesel", "amount": 1, "unit": "bogons"}, "unit", "bogons"),
    ({"carrier": "electricity", "amount": 1, "unit": "kWh", "region": "mars"}, "region", "north_east"),
    ({"carrier": "electricity", "amount": 1, "unit": "kWh", "factor_set": "x"}, "factor_set", "mee-2023"),
    ({"carrier": "electricity", "amount": 1, "unit": "kWh", "year": 2019}, "year", "2019"),
    ({"carrier": "electricity", "amount": 1, "unit": "kWh", "basis": "hope"}, "basis", "market"),
])
def test_bad_inputs_name_the_field(client, body, field, mention):
    r = client.post("/api/v1/carbon/convert", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422 and problem["instance"] == "/api/v1/carbon/convert"
    # schema errors name the field in `detail`; the calculator's own errors say what is wrong with it
    assert f"body.{field}" in problem["detail"] or (mention and mention in problem["detail"])
    err = problem["errors"][0]
    assert err["field"] == f"body.{field}" and mention in err["message"]


def test_list_factors(client):
    r = client.get("/api/v1/factors", params={"set": "mee-2023", "kind": "grid", "region": "south"})
    assert r.status_code == 200
    rows = r.json()["items"]
    assert [(f["year"], f["value"]) for f in rows] == [(2021, 0.4326), (2022, 0.3869), (2023, 0.4042)]
    assert all("MEE/NBS" in f["source"] for f in rows)
    r = client.get("/api/v1/factors", params={"set": "mee-2023", "kind": "tce"})
    assert {f["key"] for f in r.json()["items"]} >= {"mee-2023:tce:electricity", "mee-2023:tce:steam"}
    r = client.get("/api/v1/factors", params={"set": "mee-2023", "region": "north", "year": 2022})
    assert [f["value"] for f in r.json()["items"]] == [0.6776]
    r = client.get("/api/v1/factors", params={"kind": "nope"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.kind"
    assert "nope" in r.json()["detail"]


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(unit=st.text(alphabet=st.characters(codec="utf-8"), max_size=12))
def test_any_unit_text_is_converted_or_refused_never_a_crash(unit):
    # pint's expression parser raises assorted exception types on malformed text
    try:
        req = ConvertRequest(carrier="electricity", amount=1, unit=unit)
    except ValidationError as exc:
        assert exc.errors()[0]["loc"] == ("unit",)
        return
    try:
        result = carbon.convert(**req.model_dump())
    except carbon.ConversionError as exc:
        assert exc.field == "unit"
        return
    assert result.tco2e is not None and math.isfinite(result.tco2e)
