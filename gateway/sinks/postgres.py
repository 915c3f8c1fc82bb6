"""PostgreSQL sink: binary COPY straight into `readings`, idempotent on replay.

The fast path copies a batch directly into `readings` inside a savepoint. A batch that repeats
rows already stored (a replay after a crash or an outage) violates the unique key; it is then
copied into a temporary staging table and inserted with ON CONFLICT DO NOTHING, so a replay
never double-counts. The rollup buckets a batch touches are marked, and the newest row of each
series it holds is upserted into ``latest_readings`` (``lingtan.core.latest``, only where newer),
in the same transaction. Re-materialising the marked buckets is central work
(``lingtan.core.rollup_worker``), never the sink's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import psycopg

from lingtan.core import rollups
from lingtan.core.latest import keep_latest
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading

log = logging.getLogger(__name__)

Row = tuple[datetime, str, str, float, int]  # (time, meter_id, quantity, value, quality)
COLUMNS = "(time, meter_id, quantity, value, quality)"
TYPES = ["timestamptz", "text", "text", "float8", "int2"]

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS readings_staging (
    time timestamptz NOT NULL, meter_id text NOT NULL, quantity text NOT NULL,
    value double precision NOT NULL, quality smallint NOT NULL
) ON COMMIT DELETE ROWS
"""


def _copy(cur: psycopg.Cursor, table: str, rows: Sequence[Row]) -> None:
    with cur.copy(f"COPY {table} {COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(TYPES)
        for row in rows:
            copy.write_row(row)


class _Connected:
    """One lazily (re)opened connection; any failure closes it so the next call reconnects."""

    def __init__(self, database_url: str, application_name: str = "lingtan") -> None:
        self.url = libpq_url(database_url)
        self.application_name = application_name  # how pg_stat_activity names this writer
        self._conn: psycopg.Connection | None = None

    def _setup(self, conn: psycopg.Connection) -> None:
        """Per-connection preparation, run once after each (re)connect."""

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, connect_timeout=5,
                                         application_name=self.application_name)
            self._setup(self._conn)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class PostgresSink(_Connected):
    def __init__(self, database_url: str, *, refresh_rollups: bool = True,
                 application_name: str = "lingtan-writer") -> None:
        super().__init__(database_url, application_name)
        self.refresh_rollups = refresh_rollups  # mark touched rollup buckets for refreshing

    def _setup(self, conn: psycopg.Connection) -> None:
        conn.execute(_STAGING)
        conn.commit()

    def write(self, readings: Sequence[Reading]) -> int:
        """Commit ``readings``; returns how many were new. Safe to call again with the same rows."""
        return self.write_rows([(r.time, r.meter_id, r.quantity, r.value, int(r.quality))
                                for r in readings])

    def write_rows(self, rows: Sequence[Row]) -> int:
        """Like ``write``, for rows already in COPY column order (the buffer's drain path)."""
        if not rows:
            return 0
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:  # readings, last values, marks: together
                try:
                    with conn.transaction():  # nested: a savepoint that undoes only the COPY
                        _copy(cur, "readings", rows)
                    inserted = len(rows)
                except psycopg.errors.UniqueViolation:
                    _copy(cur, "readings_staging", rows)
                    cur.execute(
                        f"INSERT INTO readings {COLUMNS} SELECT * FROM readings_staging"
                        " ON CONFLICT (meter_id, quantity, time) DO NOTHING"
                    )
                    inserted = cur.rowcount
                keep_latest(cur, rows)
                if self.refresh_rollups:
                    rollups.mark_dirty(conn, rollups.touched(rows))
            return inserted
        except BaseException:
            self.close()
            raise


def register_devices(database_url: str, gateway_id: str, site_id: str, site_name: str,
                     devices: list[tuple[str, str, str | None, str]]) -> None:
    """Make the site and the gateway's meters known (id, name, role, protocol).

    The site model owns names, roles and sites (docs/domain.md; set by a site file or by hand),
    so a gateway only registers what nobody has described yet: a missing site or meter is
    inserted with the gateway's values, an existing one keeps its own. What the gateway alone
    knows — the protocol and that it carries the meter — is updated on a meter of its site.
    """
    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        conn.execute(
            "INSERT INTO sites (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
            (site_id, site_name),
        )
        for meter_id, name, role, protocol in devices:
            row = conn.execute(
                "INSERT INTO meters (id, site_id, name, role, protocol, gateway_id)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET protocol = EXCLUDED.protocol,"
                " gateway_id = EXCLUDED.gateway_id WHERE meters.site_id = EXCLUDED.site_id"
                " RETURNING site_id",
                (meter_id, site_id, name, role, protocol, gateway_id),
            ).fetchone()
            if row is None:
                # The id is taken by another site's meter: its readings will be counted there.
                owner = conn.execute("SELECT site_id FROM meters WHERE id = %s", (meter_id,)).fetchone()
                log.warning("meter %r belongs to site %r, not to this gateway's site %r; left as it is",
                            meter_id, owner[0] if owner else None, site_id)
