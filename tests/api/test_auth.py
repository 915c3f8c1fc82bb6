"""Every route but health needs a key, write routes need engineer, key routes need admin.

The route lists come from the app's own OpenAPI schema, so a route added later is checked
without editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.app import create_app

OPEN = {("GET", "/api/v1/health")}
# POSTs that compute and store nothing, so a viewer may call them.
READ_ONLY_POSTS = {("POST", "/api/v1/carbon/convert")}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _operations() -> list[tuple[str, str, set[str]]]:
    # FastAPI builds the schema from every included route (app.routes holds routers, not routes)
    paths = create_app().openapi()["paths"]
    return [(method.upper(), path, set(op.get("tags", [])))
            for path, item in paths.items() for method, op in item.items()]


OPERATIONS = _operations()
PROTECTED = [(m, p) for m, p, _ in OPERATIONS if (m, p) not in OPEN]
WRITE_ROUTES = [(m, p) for m, p, _ in OPERATIONS if m in WRITES and (m, p) not in READ_ONLY_POSTS]
ADMIN_ROUTES = [(m, p) for m, p, tags in OPERATIONS if "keys" in tags]


def _url(path: str) -> str:
    # 1 is a valid value for every path parameter, integer or text
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture
def client(api_db: str) -> TestClient:
    return TestClient(create_app())


def test_the_lists_are_not_empty():
    # guards the generated parametrisations below against silently testing nothing
    assert len(PROTECTED) >= 10 and WRITE_ROUTES and ADMIN_ROUTES
    assert ("DELETE", "/api/v1/keys/{key_id}") in WRITE_ROUTES


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_key_or_a_bad_key_is_refused(client: TestClient, method: str, path: str):
    for headers in ({}, {"Authorization": "Bearer lt_0000_nope"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        r = client.request(method, _url(path), headers=headers)
        assert r.status_code == 401, (method, path, headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 401 and r.json()["instance"] == _url(path)


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_a_viewer_cannot_write(client: TestClient, auth_headers: Callable, method: str, path: str):
    r = client.request(method, _url(path), headers=auth_headers("viewer"))
    assert r.status_code == 403, (method, path, r.text)
    assert "viewer" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_an_engineer_cannot_manage_keys(client: TestClient, auth_headers: Callable, method: str, path: str):
    r = client.request(method, _url(path), headers=auth_headers("engineer"))
    assert r.status_code == 403, (method, path, r.text)


def test_health_needs_no_key(client: TestClient):
    assert client.get("/api/v1/health").json()["database"] == "ok"


def test_a_revoked_key_is_refused_at_once(client: TestClient, auth_headers: Callable):
    admin, viewer = auth_headers("admin"), auth_headers("viewer")
    assert client.get("/api/v1/sites", headers=viewer).status_code == 200
    keys = client.get("/api/v1/keys", headers=admin, params={"limit": 1000}).json()
    viewer_prefix = viewer["Authorization"].split("_")[1]
    key_id = next(k["id"] for k in keys["items"] if k["prefix"] == viewer_prefix)
    assert client.delete(f"/api/v1/keys/{key_id}", headers=admin).status_code == 200
    r = client.get("/api/v1/sites", headers=viewer)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_openapi_names_the_bearer_scheme_on_every_protected_operation(client: TestClient):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "API key: `Authorization: Bearer lt_…`"}
    for method, path in PROTECTED:
        operation = schema["paths"][path][method.lower()]
        assert operation["security"] == [{"HTTPBearer": []}], (method, path)
        assert set(operation["responses"]) >= {"401", "403"}
    assert "security" not in schema["paths"]["/api/v1/health"]["get"]
