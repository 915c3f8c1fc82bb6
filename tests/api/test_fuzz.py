"""Property-based fuzzing of every operation in /openapi.json with schemathesis.

In-process (ASGI) against the real test database, seeded so that paths hit real rows, with an
admin key so every operation is reachable. Deterministic (derandomized) and bounded per
operation, so it runs in about a minute and fails the same way every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from gateway.health import HealthRegistry, HeartbeatWriter
from gateway.sinks.postgres import PostgresSink, register_devices
from lingtan.core.keys import create_key
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from lingtan.kernel.settings import get_settings
from tests.dashboard.seed import SITE_ID, seed_demo_plant
from tests.pipeline import refresh_rollups

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _seed(url: str) -> None:
    seed_demo_plant(url, end=clock.now(), hours=1.0, step_s=30)  # live data for the "now" routes
    # the ids the OpenAPI examples name, so the explicit examples reach real rows
    register_devices(url, "demo-gw-1", SITE_ID, "Shenyang Demo Plant",
                     [("grid-incomer", "Grid incomer", "grid_import", "modbus-tcp")])
    now = datetime.now(UTC).replace(microsecond=0)
    sink = PostgresSink(url)
    try:
        sink.write([Reading(now - timedelta(seconds=10 * i), "grid-incomer", "active_power", 400.0 + i)
                    for i in range(60)])
    finally:
        sink.close()
    refresh_rollups(url)
    health = HealthRegistry(["grid-incomer"], gateway_id="demo-gw-1", site_id=SITE_ID, heartbeat_s=30)
    health.poll_ok("grid-incomer", 0.02, 1)
    assert HeartbeatWriter(url, health, 30).beat()


@pytest.fixture(scope="module")
def fuzz_db(database_url: str) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LINGTAN_DATABASE_URL", database_url)
        # every operation's answers are under test here, not the API process's background work
        # (tests/alerts, tests/test_rollup_worker): starting and stopping it around each
        # operation's cases cost seconds each
        mp.setenv("LINGTAN_ALERTS_SCHEDULER", "false")
        mp.setenv("LINGTAN_ROLLUPS_REFRESHER", "false")
        get_settings.cache_clear()
        _seed(database_url)
        yield database_url
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def admin_headers(fuzz_db: str) -> dict[str, str]:
    with get_engine(fuzz_db).begin() as conn:
        _, key = create_key(conn, "admin", "fuzz")
    return {"Authorization": f"Bearer {key}"}


# Loaded at import: building /openapi.json needs no database, and one test per operation is
# collected. (schemathesis.pytest.from_fixture would defer this, but its lazy loader breaks on
# pytest 9: it renames the test node through an attribute pytest no longer has.)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case, admin_headers: dict[str, str]):
    # admin_headers also seeds the database (fuzz_db) before the first case
    case.call_and_validate(headers=admin_headers, checks=CHECKS)


def test_the_fuzzed_database_has_rows_to_find(fuzz_db: str):
    # guards the seeding above: without rows every path would only ever answer 404
    with get_engine(fuzz_db).connect() as conn:
        meters = conn.execute(sa.text("SELECT count(*) FROM meters WHERE site_id = :s"),
                              {"s": SITE_ID}).scalar_one()
    assert meters >= 3
