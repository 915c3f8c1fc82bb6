"""PostgreSQL sink: binary COPY into a temporary staging table, then an idempotent insert."""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg

from lingtan import rollups
from lingtan.db import libpq_url
from lingtan.reading import Reading

log = logging.getLogger(__name__)

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS readings_staging (
    time timestamptz NOT NULL, meter_id text NOT NULL, quantity text NOT NULL,
    value double precision NOT NULL, quality smallint NOT NULL
) ON COMMIT DELETE ROWS
"""


class PostgresSink:
    def __init__(self, database_url: str, *, refresh_rollups: bool = True) -> None:
        self.url = libpq_url(database_url)
        self.refresh_rollups = refresh_rollups
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, connect_timeout=5)
            self._conn.execute(_STAGING)
            self._conn.commit()
        return self._conn

    def write(self, readings: list[Reading]) -> int:
        """Commit ``readings``; returns how many were new. Safe to call again with the same rows."""
        if not readings:
            return 0
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                with cur.copy(
                    "COPY readings_staging (time, meter_id, quantity, value, quality)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["timestamptz", "text", "text", "float8", "int2"])
                    for r in readings:
                        copy.write_row((r.time, r.meter_id, r.quantity, r.value, int(r.quality)))
                cur.execute(
                    "INSERT INTO readings (time, meter_id, quantity, value, quality)"
                    " SELECT time, meter_id, quantity, value, quality FROM readings_staging"
                    " ON CONFLICT (meter_id, quantity, time) DO NOTHING"
                )
                inserted = cur.rowcount
                if self.refresh_rollups:
                    minute = timedelta(minutes=1)
                    times = {rollups.floor_time(t, minute) for t in {r.time for r in readings}}
                    rollups.refresh(conn, times, sorted({r.meter_id for r in readings}),
                                    sorted({r.quantity for r in readings}))
            conn.commit()
            return inserted
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def register_devices(database_url: str, gateway_id: str, site_id: str, site_name: str,
                     devices: list[tuple[str, str, str | None, str]]) -> None:
    """Make the site and the gateway's meters known (id, name, role, protocol)."""
    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        conn.execute(
            "INSERT INTO sites (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
            (site_id, site_name),
        )
        for meter_id, name, role, protocol in devices:
            conn.execute(
                "INSERT INTO meters (id, site_id, name, role, protocol, gateway_id)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET site_id = EXCLUDED.site_id, name = EXCLUDED.name,"
                " role = EXCLUDED.role, protocol = EXCLUDED.protocol,"
                " gateway_id = EXCLUDED.gateway_id",
                (meter_id, site_id, name, role, protocol, gateway_id),
            )
