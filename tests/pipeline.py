"""Readings into the database the way a gateway writes them: through the PostgreSQL sink, then
the central rollup refresher, as it would catch up within seconds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from gateway.sinks.postgres import PostgresSink
from lingtan.core.rollup_worker import RollupRefresher
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading

BATCH = 50_000


def refresh_rollups(url: str) -> None:
    refresher = RollupRefresher(url)
    try:
        refresher.refresh_all()
    finally:
        refresher.close()


def store_readings(url: str, readings: Sequence[Reading]) -> None:
    sink = PostgresSink(url)
    try:
        for i in range(0, len(readings), BATCH):
            sink.write(readings[i:i + BATCH])
    finally:
        sink.close()
    refresh_rollups(url)


# What the write path and the refresher fill: a snapshot of them restores stored readings exactly.
STORED = ("readings", "readings_1m", "readings_15m", "readings_1h", "readings_1d", "compressor_1h",
          "latest_readings")
_snapshots: dict[str, dict[str, bytes]] = {}


def store_readings_once(url: str, key: str, make: Callable[[], Sequence[Reading]]) -> None:
    """``store_readings(url, make())`` the first time ``key`` is asked for in this test session, then
    the same rows copied back (the tables the write path and the refresher fill, as they were): a
    module whose tests each start from an emptied database stores its months of readings once. The
    site's meters must exist already, as for ``store_readings``."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        taken = _snapshots.get(key)
        if taken is None:
            store_readings(url, make())
            taken = {}
            for table in STORED:
                with conn.cursor().copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as copy:
                    taken[table] = b"".join(bytes(chunk) for chunk in copy)
            _snapshots[key] = taken
            return
        for table in STORED:
            with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(taken[table])
