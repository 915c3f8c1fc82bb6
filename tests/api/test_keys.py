"""Key management over the API (admin) and with `lingtan keys`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin(api_db: str, auth_headers: Callable) -> TestClient:
    return TestClient(create_app(), headers=auth_headers("admin"))


def find(client: TestClient, key_id: int) -> dict:
    listing = client.get("/api/v1/keys", params={"limit": 1000}).json()
    return next(k for k in listing["items"] if k["id"] == key_id)


def test_create_shows_the_key_once_and_it_works(admin: TestClient):
    r = admin.post("/api/v1/keys", json={"role": "engineer", "name": "commissioning laptop"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith(f"lt_{created['prefix']}_")
    assert (created["role"], created["name"]) == ("engineer", "commissioning laptop")
    listed = find(admin, created["id"])
    assert listed == {k: created[k] for k in ("id", "prefix", "role", "name", "created_at")} | {
        "revoked_at": None}
    assert created["key"] not in admin.get("/api/v1/keys").text  # never listed again
    own = TestClient(create_app(), headers={"Authorization": f"Bearer {created['key']}"})
    assert own.get("/api/v1/sites").status_code == 200
    assert own.get("/api/v1/keys").status_code == 403  # engineer, not admin


def test_revoke_is_immediate_idempotent_and_404_for_unknown(admin: TestClient):
    created = admin.post("/api/v1/keys", json={"role": "viewer"}).json()
    first = admin.delete(f"/api/v1/keys/{created['id']}")
    assert first.status_code == 200 and first.json()["revoked_at"]
    again = admin.delete(f"/api/v1/keys/{created['id']}")
    assert again.json()["revoked_at"] == first.json()["revoked_at"]
    assert find(admin, created["id"])["revoked_at"] == first.json()["revoked_at"]
    user = TestClient(create_app(), headers={"Authorization": f"Bearer {created['key']}"})
    assert user.get("/api/v1/sites").status_code == 401
    missing = admin.delete("/api/v1/keys/999999999")
    assert missing.status_code == 404 and "999999999" in missing.json()["detail"]


def test_an_admin_cannot_revoke_the_key_in_use(admin: TestClient):
    me = admin.post("/api/v1/keys", json={"role": "admin", "name": "me"}).json()
    self_client = TestClient(create_app(), headers={"Authorization": f"Bearer {me['key']}"})
    r = self_client.delete(f"/api/v1/keys/{me['id']}")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert self_client.get("/api/v1/keys").status_code == 200


def test_bad_create_bodies_name_the_field(admin: TestClient):
    r = admin.post("/api/v1/keys", json={"role": "root"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.role"
    r = admin.post("/api/v1/keys", json={"role": "viewer", "name": "bell\x07"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.name"


def test_keys_list_pages(admin: TestClient):
    for i in range(3):
        admin.post("/api/v1/keys", json={"role": "viewer", "name": f"page {i}"})
    everything = admin.get("/api/v1/keys", params={"limit": 1000}).json()
    page = admin.get("/api/v1/keys", params={"limit": 2, "offset": 1}).json()
    assert (page["limit"], page["offset"], page["total"]) == (2, 1, everything["total"])
    assert page["items"] == everything["items"][1:3]


def lingtan(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGTAN_")}
    env["LINGTAN_DATABASE_URL"] = db
    return subprocess.run([sys.executable, "-m", "lingtan.cli", "keys", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_create_list_revoke(api_db: str):
    made = lingtan(api_db, "create", "--role", "viewer", "--name", "wall display")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("lt_") and "\n" not in key  # stdout is the key alone, for scripts
    assert "will not be shown again" in made.stderr
    client = TestClient(create_app(), headers={"Authorization": f"Bearer {key}"})
    assert client.get("/api/v1/sites").status_code == 200

    listed = lingtan(api_db, "list")
    line = next(row for row in listed.stdout.splitlines() if "wall display" in row)
    key_id, prefix, role = line.split()[:3]
    assert prefix == key.split("_")[1] and role == "viewer" and key not in listed.stdout

    revoked = lingtan(api_db, "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert client.get("/api/v1/sites").status_code == 401
    assert lingtan(api_db, "revoke", "999999999").returncode == 1
    bad = lingtan(api_db, "create", "--role", "root")
    assert bad.returncode == 2 and "viewer" in bad.stderr
