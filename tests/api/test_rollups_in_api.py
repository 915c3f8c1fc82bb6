"""Each API process keeps the rollups current: a single-site install (gateway → PostgreSQL, API,
dashboard) needs nothing more to run. LINGTAN_ROLLUPS_REFRESHER=false hands it to `lingtan rollups`."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gateway.sinks.postgres import PostgresSink
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading
from lingtan.kernel.settings import get_settings

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM rollup_dirty),"
                           " (SELECT coalesce(sum(count), 0) FROM readings_1m)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def write(url: str, n: int, start: datetime = T0) -> None:
    sink = PostgresSink(url)
    try:
        sink.write([Reading(start + timedelta(seconds=5 * i), "m", "active_power", 1.0) for i in range(n)])
    finally:
        sink.close()


def refresher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rollups" and t.is_alive()]


@pytest.fixture
def api_env(api_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LINGTAN_ALERTS_SCHEDULER", "false")
    monkeypatch.setenv("LINGTAN_ROLLUPS_EVERY_SECONDS", "0.2")
    get_settings.cache_clear()
    return api_db


def test_the_api_process_refreshes_marked_rollups_and_stops_with_it(api_env: str) -> None:
    write(api_env, 24)  # two minutes
    assert counts(api_env) == (2, 0)
    with TestClient(create_app()):
        deadline = time.monotonic() + 20
        while counts(api_env) != (0, 24) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counts(api_env) == (0, 24)
        write(api_env, 12, T0 + timedelta(minutes=5))  # and what arrives while it runs
        deadline = time.monotonic() + 20
        while counts(api_env) != (0, 36) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counts(api_env) == (0, 36)
        assert len(refresher_threads()) == 1
    assert refresher_threads() == []  # shutdown stops it


def test_switched_off_the_api_leaves_the_marks_to_another_refresher(api_env: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINGTAN_ROLLUPS_REFRESHER", "false")
    get_settings.cache_clear()
    write(api_env, 24)
    with TestClient(create_app()):
        time.sleep(1.0)  # five intervals
        assert refresher_threads() == []
    assert counts(api_env) == (2, 0)
