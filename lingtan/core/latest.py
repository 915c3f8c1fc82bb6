"""The newest reading of every series, kept in ``latest_readings`` by whoever writes ``readings``.

"Now" values (power now, a meter's last reading, the offline rule) read this table: one row per
(meter, quantity), so their cost does not grow with the history or, under TimescaleDB, with the
number of chunks a time-ordered lookup in ``readings`` would have to plan across.

Every writer of ``readings`` calls ``keep_latest`` (rows it has in hand) or ``catch_up`` (rows it
inserted with SQL) in the same transaction as the readings, so the two commit together. A row
replaces the stored one only when it is strictly newer: late data — a gateway replaying its
buffer, a backfill — never overwrites a newer value, and a replayed duplicate changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

Row = tuple[datetime, str, str, float, int]  # (time, meter_id, quantity, value, quality), COPY order

_UPDATE_IF_NEWER = """
ON CONFLICT (meter_id, quantity) DO UPDATE
SET time = EXCLUDED.time, value = EXCLUDED.value, quality = EXCLUDED.quality
WHERE EXCLUDED.time > l.time
"""

UPSERT = (
    "INSERT INTO latest_readings AS l (meter_id, quantity, time, value, quality)"
    " SELECT * FROM unnest(%(m)s::text[], %(q)s::text[], %(t)s::timestamptz[], %(v)s::float8[],"
    " %(k)s::int2[])" + _UPDATE_IF_NEWER
)

CATCH_UP = (
    "INSERT INTO latest_readings AS l (meter_id, quantity, time, value, quality)"
    " SELECT DISTINCT ON (meter_id, quantity) meter_id, quantity, time, value, quality FROM readings"
    " WHERE time >= %(since)s ORDER BY meter_id, quantity, time DESC" + _UPDATE_IF_NEWER
)

# The series are found by skipping along the unique (meter_id, quantity, time) index, then each
# one's newest row is one index probe: a few rows per series, never the history.
REBUILD = """
WITH RECURSIVE series AS (
    (SELECT meter_id, quantity FROM readings ORDER BY meter_id, quantity LIMIT 1)
    UNION ALL
    SELECT n.meter_id, n.quantity FROM series s CROSS JOIN LATERAL (
        SELECT r.meter_id, r.quantity FROM readings r
        WHERE (r.meter_id, r.quantity) > (s.meter_id, s.quantity)
        ORDER BY r.meter_id, r.quantity LIMIT 1) n
)
INSERT INTO latest_readings AS l (meter_id, quantity, time, value, quality)
SELECT s.meter_id, s.quantity, r.time, r.value, r.quality
FROM series s CROSS JOIN LATERAL (
    SELECT time, value, quality FROM readings r
    WHERE r.meter_id = s.meter_id AND r.quantity = s.quantity
    ORDER BY time DESC LIMIT 1) r
""" + _UPDATE_IF_NEWER


class Executes(Protocol):
    """A psycopg connection or cursor (SQLAlchemy callers pass ``conn.connection.driver_connection``)."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


def newest(rows: Iterable[Row]) -> list[Row]:
    """The newest row of each (meter, quantity) in ``rows``; of equal times the first, as the
    sink's ON CONFLICT DO NOTHING keeps the first of a batch's duplicates. Sorted by key, so that
    concurrent writers lock ``latest_readings`` rows in one order and cannot deadlock."""
    best: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row[1], row[2])
        held = best.get(key)
        if held is None or row[0] > held[0]:
            best[key] = row
    return [best[key] for key in sorted(best)]


def keep_latest(conn: Executes, rows: Iterable[Row]) -> int:
    """Upsert the newest of ``rows`` per series where it is newer than the stored one; returns
    how many series it looked at. Call it in the transaction that writes the rows to ``readings``."""
    top = newest(rows)
    if top:
        conn.execute(UPSERT, {"m": [r[1] for r in top], "q": [r[2] for r in top],
                              "t": [r[0] for r in top], "v": [float(r[3]) for r in top],
                              "k": [int(r[4]) for r in top]})
    return len(top)


def catch_up(conn: Executes, since: datetime) -> None:
    """For writers that insert into ``readings`` with SQL: take the newest of what is stored from
    ``since`` on. Pass the earliest time the transaction wrote."""
    conn.execute(CATCH_UP, {"since": since})


def rebuild(conn: Executes) -> None:
    """Take every series' newest stored reading (what migration 0009 does once): for bulk loads
    that wrote ``readings`` over a long span."""
    conn.execute(REBUILD)
