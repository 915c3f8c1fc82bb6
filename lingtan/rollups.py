"""Maintained rollup tables: 1 min from raw rows, then 15 min, 1 h and 1 day from the level below.

Called with the buckets a write touched, so late data re-materialises exactly what it changed.
"""

from __future__ import annotations

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

# Day buckets start at midnight China Standard Time (UTC+8, no daylight saving), the time zone
# of every site Lingtan serves; shorter buckets are the same in any whole-hour time zone.
ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+08:00")

_FROM_RAW = """
INSERT INTO {table} (bucket, meter_id, quantity, count, min, max, avg, first, last)
SELECT date_bin(%(width)s, time, %(origin)s) AS b, meter_id, quantity, count(*), min(value),
       max(value), avg(value), (array_agg(value ORDER BY time))[1],
       (array_agg(value ORDER BY time DESC))[1]
FROM readings
WHERE meter_id = ANY(%(meters)s) AND quantity = ANY(%(quantities)s)
  AND time >= %(start)s AND time < %(end)s
GROUP BY b, meter_id, quantity
ON CONFLICT (meter_id, quantity, bucket) DO UPDATE SET
  count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
  first = EXCLUDED.first, last = EXCLUDED.last
"""

_FROM_LEVEL = """
INSERT INTO {table} (bucket, meter_id, quantity, count, min, max, avg, first, last)
SELECT date_bin(%(width)s, bucket, %(origin)s) AS b, meter_id, quantity, sum(count), min(min),
       max(max), sum(avg * count) / sum(count), (array_agg(first ORDER BY bucket))[1],
       (array_agg(last ORDER BY bucket DESC))[1]
FROM {source}
WHERE meter_id = ANY(%(meters)s) AND quantity = ANY(%(quantities)s)
  AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY b, meter_id, quantity
ON CONFLICT (meter_id, quantity, bucket) DO UPDATE SET
  count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
  first = EXCLUDED.first, last = EXCLUDED.last
"""


def floor_time(t: datetime, width: timedelta) -> datetime:
    return t - ((t - ORIGIN) % width)


def _runs(buckets: set[datetime], width: timedelta) -> list[tuple[datetime, datetime]]:
    """Contiguous [start, end) ranges covering the given bucket starts."""
    runs: list[tuple[datetime, datetime]] = []
    for b in sorted(buckets):
        if runs and runs[-1][1] == b:
            runs[-1] = (runs[-1][0], b + width)
        else:
            runs.append((b, b + width))
    return runs


def refresh(conn: psycopg.Connection, times: set[datetime], meters: list[str],
            quantities: list[str]) -> None:
    """Re-materialise every rollup bucket that contains one of ``times`` for these series.

    Naming meters and quantities lets PostgreSQL use the (meter_id, quantity, time) key
    instead of scanning the whole table.
    """
    if not times:
        return
    # the per-bucket first/last aggregates sort; keep that sort in memory
    conn.execute("SET LOCAL work_mem = '32MB'")
    for table, width, source in LEVELS:
        buckets = {floor_time(t, width) for t in times}
        sql = _FROM_RAW.format(table=table) if source is None else _FROM_LEVEL.format(
            table=table, source=source)
        for start, end in _runs(buckets, width):
            conn.execute(sql, {"width": width, "origin": ORIGIN, "start": start, "end": end,
                               "meters": meters, "quantities": quantities})
