"""GET /api/v1/gateways: heartbeats written by the real writer, read back through the API."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from gateway.health import HealthRegistry, HeartbeatWriter
from lingtan.kernel.db import libpq_url


@pytest.fixture
def client(api_client: TestClient) -> TestClient:
    return api_client


def beat(db: str, gateway_id: str, heartbeat_s: float = 30.0) -> HealthRegistry:
    health = HealthRegistry(["meter-a", "meter-b"], gateway_id=gateway_id, site_id="site-x",
                            heartbeat_s=heartbeat_s)
    health.poll_ok("meter-a", 0.02, 5)
    health.poll_failed("meter-b", "meter-b: no reply")
    health.bind(pending=lambda: 3, written=lambda: 5)
    assert HeartbeatWriter(db, health, heartbeat_s).beat()
    return health


def test_a_fresh_heartbeat_is_online_with_its_snapshot(client: TestClient, db: str):
    gw = f"gw-{uuid.uuid4().hex[:6]}"
    beat(db, gw)
    r = client.get(f"/api/v1/gateways/{gw}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == gw and body["site_id"] == "site-x" and body["online"] is True
    assert body["last_heartbeat"] and 0 <= body["heartbeat_age_s"] < 30
    devices = {d["device"]: d for d in body["status"]["devices"]}
    assert devices["meter-a"]["up"] is True and devices["meter-a"]["readings_total"] == 5
    assert devices["meter-b"]["consecutive_failures"] == 1
    assert devices["meter-b"]["last_error"] == "meter-b: no reply"
    assert body["status"]["buffer_pending"] == 3 and body["status"]["sink_written"] == 5
    assert gw in [g["id"] for g in client.get("/api/v1/gateways").json()["items"]]


def test_upsert_keeps_one_row_and_the_latest_snapshot(client: TestClient, db: str):
    gw = f"gw-{uuid.uuid4().hex[:6]}"
    health = beat(db, gw)
    health.poll_ok("meter-b", 0.03, 2)
    assert HeartbeatWriter(db, health, 30).beat()
    listed = [g for g in client.get("/api/v1/gateways").json()["items"] if g["id"] == gw]
    assert len(listed) == 1
    devices = {d["device"]: d for d in listed[0]["status"]["devices"]}
    assert devices["meter-b"]["up"] is True


def test_a_stale_or_stopped_gateway_is_offline(client: TestClient, db: str):
    stale, stopped = f"gw-{uuid.uuid4().hex[:6]}", f"gw-{uuid.uuid4().hex[:6]}"
    beat(db, stale, heartbeat_s=10)
    with psycopg.connect(libpq_url(db), autocommit=True) as conn:  # 31 s > 3 missed 10 s beats
        conn.execute("UPDATE gateway_heartbeats SET time = now() - interval '31 seconds'"
                     " WHERE gateway_id = %s", (stale,))
    health = beat(db, stopped)
    assert HeartbeatWriter(db, health, 30).beat(running=False)
    assert client.get(f"/api/v1/gateways/{stale}").json()["online"] is False
    assert client.get(f"/api/v1/gateways/{stopped}").json()["online"] is False


def test_an_unknown_gateway_is_a_problem_404(client: TestClient):
    r = client.get("/api/v1/gateways/no-such-gw")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "gateway 'no-such-gw' has no heartbeat"
