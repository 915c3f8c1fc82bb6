"""The schema on plain PostgreSQL, and the TimescaleDB features whenever the extension is there."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from lingtan.kernel.db import libpq_url
from lingtan.kernel.migrate import current_revision
from tests.conftest import _replace_database


def head() -> str:
    from alembic.script import ScriptDirectory

    from lingtan.kernel.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("postgresql://unused/db")).get_current_head()


def test_schema_is_at_head_with_the_unique_reading_key(database_url):
    assert head() >= "0005"
    assert current_revision(database_url) == head()
    with psycopg.connect(libpq_url(database_url)) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"sites", "meters", "readings", "readings_1m", "readings_15m", "readings_1h",
                "readings_1d", "compressor_1h"} <= tables
        conn.execute("INSERT INTO readings VALUES (%s, 'm', 'active_power', 1.0, 0)",
                     (datetime(2026, 1, 1, tzinfo=UTC),))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO readings VALUES (%s, 'm', 'active_power', 2.0, 0)",
                         (datetime(2026, 1, 1, tzinfo=UTC),))
        conn.rollback()


def test_db_upgrade_command_on_a_new_database_and_again(server_url):
    name = f"lingtan_cli_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _replace_database(server_url, name)
    env = {**os.environ, "LINGTAN_DATABASE_URL": url}
    try:
        for _ in range(2):  # idempotent
            out = subprocess.run([sys.executable, "-m", "lingtan.cli", "db", "upgrade"], env=env,
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            assert "up to date" in out.stdout
        assert current_revision(url) == head()
    finally:
        from lingtan.kernel.db import get_engine

        get_engine(url).dispose()
        with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_db_upgrade_without_a_url_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if k != "LINGTAN_DATABASE_URL"}
    out = subprocess.run([sys.executable, "-m", "lingtan.cli", "db", "upgrade"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "LINGTAN_DATABASE_URL" in out.stderr


@pytest.mark.timescaledb
def test_timescaledb_hypertables_compression_and_retention(database_url, timescaledb):
    if not timescaledb:
        pytest.skip("the test database has no timescaledb extension")
    with psycopg.connect(libpq_url(database_url)) as conn:
        hypertables = {r[0] for r in conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables")}
        assert {"readings", "readings_1m", "readings_1d"} <= hypertables
        segment = {r[0] for r in conn.execute(
            "SELECT attname FROM timescaledb_information.compression_settings"
            " WHERE hypertable_name = 'readings' AND segmentby_column_index IS NOT NULL")}
        assert segment == {"meter_id", "quantity"}
        jobs = {r[0] for r in conn.execute(
            "SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name = 'readings'")}
        assert {"policy_compression", "policy_retention"} <= jobs


def test_migration_0009_takes_each_series_newest_reading_from_the_stored_ones(db):
    from alembic import command

    from lingtan.kernel.db import get_engine
    from lingtan.kernel.migrate import alembic_config, upgrade

    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    get_engine(db).dispose()
    command.downgrade(alembic_config(db), "0008")
    try:
        with psycopg.connect(libpq_url(db)) as conn:
            # inserted out of time order, as late data lands; three series of two meters
            for seconds, meter, quantity, value, quality in [
                (30, "m1", "active_power", 3.0, 0), (50, "m1", "active_power", 5.0, 16),
                (10, "m1", "active_power", 1.0, 0), (20, "m1", "voltage", 230.0, 0),
                (40, "m2", "active_power", 4.0, 0), (0, "m2", "active_power", 0.5, 0)]:
                conn.execute("INSERT INTO readings VALUES (%s, %s, %s, %s, %s)",
                             (t0 + timedelta(seconds=seconds), meter, quantity, value, quality))
        upgrade(db)
        with psycopg.connect(libpq_url(db)) as conn:
            got = conn.execute("SELECT meter_id, quantity, time, value, quality FROM latest_readings"
                               " ORDER BY meter_id, quantity").fetchall()
        assert got == [("m1", "active_power", t0 + timedelta(seconds=50), 5.0, 16),
                       ("m1", "voltage", t0 + timedelta(seconds=20), 230.0, 0),
                       ("m2", "active_power", t0 + timedelta(seconds=40), 4.0, 0)]
    finally:
        upgrade(db)
