"""Errors are RFC 9457 problem details; lists come in pages; CORS follows LINGTAN_CORS_ORIGINS."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gateway.sinks.postgres import register_devices
from lingtan.kernel.settings import get_settings

PROBLEM = "application/problem+json"


def assert_problem(r, status: int, path: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == "about:blank" and body["status"] == status and body["instance"] == path
    assert body["title"] and body["detail"]
    return body


def test_unknown_path_and_method_are_problems(api_client: TestClient):
    assert_problem(api_client.get("/api/v1/no-such-thing"), 404, "/api/v1/no-such-thing")
    body = assert_problem(api_client.put("/api/v1/sites"), 405, "/api/v1/sites")
    assert body["title"] == "Method Not Allowed"


def test_a_missing_row_is_a_404_problem(api_client: TestClient):
    body = assert_problem(api_client.get("/api/v1/sites/atlantis"), 404, "/api/v1/sites/atlantis")
    assert body["title"] == "Not Found" and "atlantis" in body["detail"]


def test_validation_errors_name_every_field(api_client: TestClient):
    r = api_client.post("/api/v1/carbon/convert", json={"carrier": "diesel", "amount": -1})
    body = assert_problem(r, 422, "/api/v1/carbon/convert")
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {"body.amount", "body.unit"}
    assert "greater than or equal to 0" in fields["body.amount"]
    assert "body.amount" in body["detail"] and "body.unit" in body["detail"]
    r = api_client.get("/api/v1/sites", params={"limit": 0, "offset": -1})
    body = assert_problem(r, 422, "/api/v1/sites")
    assert {e["field"] for e in body["errors"]} == {"query.limit", "query.offset"}
    r = api_client.post("/api/v1/carbon/convert", content=b"{not json", headers={
        "content-type": "application/json"})
    assert_problem(r, 422, "/api/v1/carbon/convert")


def test_an_unhandled_error_is_a_500_problem_without_internals(api_db: str, caplog):
    app = create_app()

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret connection string postgresql://u:pw@db")

    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        r = client.get("/api/v1/boom")
    body = assert_problem(r, 500, "/api/v1/boom")
    assert "secret" not in r.text and "RuntimeError" not in r.text
    assert body["title"] == "Internal Server Error"
    record = next(rec for rec in caplog.records if rec.name == "api.errors")
    assert record.path == "/api/v1/boom" and record.error == "RuntimeError"  # type: ignore[attr-defined]
    assert record.exc_info is not None


def test_openapi_documents_problems_as_problem_json(api_client: TestClient):
    schema = api_client.get("/openapi.json").json()
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "errors"} <= set(problem["properties"])
    responses = schema["paths"]["/api/v1/sites/{site_id}"]["get"]["responses"]
    for status in ("401", "403", "404", "422"):
        assert responses[status]["content"] == {
            PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    tags = {t["name"]: t["description"] for t in schema["tags"]}
    assert {"health", "sites", "gateways", "carbon", "keys"} <= set(tags) and all(tags.values())


@pytest.mark.parametrize("path", ["/api/v1/sites", "/api/v1/sites/site-00/meters", "/api/v1/factors",
                                  "/api/v1/gateways", "/api/v1/keys"])
def test_lists_are_pages(api_db: str, auth_headers: Callable, path: str):
    for s in range(3):
        register_devices(api_db, f"gw-{s}", f"site-{s:02}", f"Site {s}",
                         [(f"m-{s}-{i}", f"Meter {i}", "load", "modbus-tcp") for i in range(3)])
    auth_headers("viewer"), auth_headers("viewer")  # three keys in all
    client = TestClient(create_app(), headers=auth_headers("admin"))
    whole = client.get(path, params={"limit": 1000}).json()
    assert whole["total"] == len(whole["items"]) and whole["offset"] == 0
    page = client.get(path, params={"limit": 2, "offset": 1}).json()
    if path != "/api/v1/gateways":  # register_devices writes no heartbeat
        assert whole["total"] >= 3
        assert page["items"] == whole["items"][1:3]
    assert (page["total"], page["limit"], page["offset"]) == (whole["total"], 2, 1)
    default = client.get(path).json()
    assert default["limit"] == 100
    assert client.get(path, params={"limit": 1001}).status_code == 422


def test_cors_allows_only_the_configured_origins(api_db: str, auth_headers: Callable,
                                                 monkeypatch: pytest.MonkeyPatch):
    headers = auth_headers("viewer")
    monkeypatch.setenv("LINGTAN_CORS_ORIGINS", "https://energy.example.com, https://ops.example.com")
    get_settings.cache_clear()
    client = TestClient(create_app(), headers=headers)
    allowed = client.get("/api/v1/sites", headers={"Origin": "https://ops.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://ops.example.com"
    other = client.get("/api/v1/sites", headers={"Origin": "https://evil.example.net"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    preflight = client.options("/api/v1/sites", headers={
        "Origin": "https://energy.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()

    monkeypatch.setenv("LINGTAN_CORS_ORIGINS", "")
    get_settings.cache_clear()
    plain = TestClient(create_app(), headers=headers)
    r = plain.get("/api/v1/sites", headers={"Origin": "https://ops.example.com"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(("method", "url", "body", "field"), [
    # each of these was a 500 before the routes refused it (found by fuzzing by hand)
    ("GET", "/api/v1/sites/a%00b", None, "path.site_id"),
    ("GET", "/api/v1/sites/a%00b/kpis/now", None, "path.site_id"),
    ("GET", "/api/v1/gateways/a%00b", None, "path.gateway_id"),
    ("GET", "/api/v1/meters/a%00b/readings?quantity=active_power", None, "path.meter_id"),
    ("GET", "/api/v1/meters/m/readings?quantity=active_power&end=0001-01-01T00:00:00Z", None, "query.end"),
    ("GET", "/api/v1/sites/s/power?end=0001-01-01T00:00:00Z", None, "query.end"),
    ("GET", "/api/v1/factors?year=0", None, "query.year"),
    ("POST", "/api/v1/carbon/convert", {"carrier": "diesel", "amount": 1, "unit": "t", "year": False},
     "body.year"),
    ("POST", "/api/v1/carbon/convert", {"carrier": "electricity", "amount": 1e308, "unit": "MWh"},
     "body.amount"),
    ("POST", "/api/v1/carbon/convert", {"carrier": "electricity", "amount": "Infinity", "unit": "kWh"},
     "body.amount"),
    ("POST", "/api/v1/carbon/convert", {"carrier": "electricity", "amount": 1, "unit": "kWh/0"}, "body.unit"),
    ("POST", "/api/v1/carbon/convert", {"carrier": "electricity", "amount": 1, "unit": "("}, "body.unit"),
])
def test_edge_inputs_are_422_naming_the_field(api_client: TestClient, method: str, url: str,
                                              body: dict | None, field: str):
    r = api_client.request(method, url, json=body)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
