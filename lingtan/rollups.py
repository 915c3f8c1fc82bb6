"""Maintained rollup tables: 1 min from raw rows, then 15 min, 1 h and 1 day from the level below.

Writers only mark the (meter, quantity, minute) buckets they touched, in `rollup_dirty`, in the
same transaction as the readings; `refresh_dirty` re-materialises marked buckets and clears the
marks. Late data therefore re-materialises exactly what it changed, a crash can never lose a
mark, and writing stays cheap however many series a batch touches.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg

# (table, bucket width, source table or None for raw readings)
LEVELS: list[tuple[str, timedelta, str | None]] = [
    ("readings_1m", timedelta(minutes=1), None),
    ("readings_15m", timedelta(minutes=15), "readings_1m"),
    ("readings_1h", timedelta(hours=1), "readings_15m"),
    ("readings_1d", timedelta(days=1), "readings_1h"),
]
RESOLUTIONS = {"1m": "readings_1m", "15m": "readings_15m", "1h": "readings_1h", "1d": "readings_1d"}
MINUTE = timedelta(minutes=1)

# Day buckets start at midnight China Standard Time (UTC+8, no daylight saving), the time zone
# of every site Lingtan serves; shorter buckets are the same in any whole-hour time zone.
ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+08:00")

_UPSERT = """
INSERT INTO {table} (bucket, meter_id, quantity, count, min, max, avg, first, last)
{select}
ON CONFLICT (meter_id, quantity, bucket) DO UPDATE SET
  count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
  first = EXCLUDED.first, last = EXCLUDED.last
"""

# The marked buckets arrive as three parallel arrays; joining on them lets PostgreSQL use the
# (meter_id, quantity, time) key of the source for each bucket.
_FROM_RAW = """
SELECT d.bucket, d.meter_id, d.quantity, count(*), min(r.value), max(r.value), avg(r.value),
       (array_agg(r.value ORDER BY r.time))[1], (array_agg(r.value ORDER BY r.time DESC))[1]
FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
     AS d(meter_id, quantity, bucket)
JOIN readings r ON r.meter_id = d.meter_id AND r.quantity = d.quantity
     AND r.time >= d.bucket AND r.time < d.bucket + %(width)s
GROUP BY d.bucket, d.meter_id, d.quantity
"""

_FROM_LEVEL = """
SELECT d.bucket, d.meter_id, d.quantity, sum(s.count), min(s.min), max(s.max),
       sum(s.avg * s.count) / sum(s.count), (array_agg(s.first ORDER BY s.bucket))[1],
       (array_agg(s.last ORDER BY s.bucket DESC))[1]
FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
     AS d(meter_id, quantity, bucket)
JOIN {source} s ON s.meter_id = d.meter_id AND s.quantity = d.quantity
     AND s.bucket >= d.bucket AND s.bucket < d.bucket + %(width)s
GROUP BY d.bucket, d.meter_id, d.quantity
"""

Key = tuple[str, str, datetime]  # (meter_id, quantity, bucket start)


def floor_time(t: datetime, width: timedelta) -> datetime:
    return t - ((t - ORIGIN) % width)


def touched(rows: Sequence[tuple[datetime, str, str, float, int]]) -> set[Key]:
    """The minute buckets a batch of (time, meter, quantity, value, quality) rows falls in.

    A batch spans a minute or two, so every series × every minute of the batch is marked: a
    series with no reading in one of those minutes costs a refresh that finds nothing, and
    this is several times cheaper than pairing each row with its own minute.
    """
    if not rows:
        return set()
    minutes = {floor_time(t, MINUTE) for t in {r[0] for r in rows}}
    if len(minutes) > 3:  # a replayed backlog spanning many minutes: mark exactly
        return {(r[1], r[2], floor_time(r[0], MINUTE)) for r in rows}
    return {(m, q, b) for m, q in {(r[1], r[2]) for r in rows} for b in minutes}


def mark_dirty(conn: psycopg.Connection, keys: set[Key]) -> None:
    if not keys:
        return
    conn.execute(
        "INSERT INTO rollup_dirty (meter_id, quantity, bucket)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])"
        " ON CONFLICT DO NOTHING",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
    )


def refresh_keys(conn: psycopg.Connection, keys: set[Key]) -> None:
    """Re-materialise the given minute buckets and every bucket above them."""
    conn.execute("SET LOCAL work_mem = '32MB'")  # first/last aggregates sort; keep it in memory
    level_keys = keys
    for table, width, source in LEVELS:
        if source is not None:
            level_keys = {(m, q, floor_time(b, width)) for m, q, b in level_keys}
        if not level_keys:
            return
        ordered = sorted(level_keys)
        select = _FROM_RAW if source is None else _FROM_LEVEL.format(source=source)
        conn.execute(_UPSERT.format(table=table, select=select), {
            "meters": [k[0] for k in ordered], "quantities": [k[1] for k in ordered],
            "buckets": [k[2] for k in ordered], "width": width,
        })


def refresh_dirty(conn: psycopg.Connection, limit: int = 20_000) -> int:
    """Claim up to ``limit`` marked buckets, re-materialise them, clear the marks; commits.

    Several refreshers (gateways, ingest workers) can run at once: SKIP LOCKED gives each its
    own marks. Returns how many buckets were refreshed.
    """
    with conn.transaction():
        rows = conn.execute(
            "DELETE FROM rollup_dirty WHERE (meter_id, quantity, bucket) IN ("
            " SELECT meter_id, quantity, bucket FROM rollup_dirty"
            " ORDER BY bucket LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING meter_id, quantity, bucket",
            (limit,),
        ).fetchall()
        keys = {(r[0], r[1], r[2]) for r in rows}
        refresh_keys(conn, keys)
    return len(keys)

