"""Per-bucket sums of a site's counter series, kept so a long series reads one row per bucket.

``counter_series_many`` re-aggregates the rollups of every meter in every series on each call
(a year of hours for a site is ~90,000 rollup rows into 8,760 buckets). Complete buckets never
change unless data arrives late, so their sums are stored in ``series_cache`` under a key made
of the resolution and the exact (meters, quantity) specs: a different set of meters — a meter's
role changed, a meter was added — is simply another key.

Exactness: the rollup refresher deletes the cached buckets it rewrites, in the transaction that
rewrites them, holding ``SERIES_CACHE_LOCK`` shared; a reader fills missing buckets in its own
transaction holding the same lock exclusively, computing them only after it has the lock. So a
fill never stores sums from rollups that a refresh is changing, and a refresh never leaves a
cached bucket it changed. The current, incomplete bucket is never cached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from lingtan.core.counters import Flat, Resolution, counter_series_many
from lingtan.core.rollups import SERIES_CACHE_LOCK
from lingtan.kernel.timegrid import ceil_time, floor_time

WIDTHS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
# more separate holes than this (scattered late data) and one query over the whole range is cheaper
MAX_RUNS = 16

Specs = Sequence[tuple[Sequence[str], str]]
Rows = list[tuple[datetime, Flat]]


def spec_key(resolution: str, specs: Specs) -> str:
    text = resolution + "|" + ";".join(f"{q}:{','.join(sorted(set(m)))}" for m, q in specs)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _runs(grid: list[datetime], have: set[datetime], width: timedelta) -> list[tuple[datetime, datetime]]:
    runs: list[tuple[datetime, datetime]] = []
    for b in grid:
        if b in have:
            continue
        if runs and runs[-1][1] == b:
            runs[-1] = (runs[-1][0], b + width)
        else:
            runs.append((b, b + width))
    return runs


def cached_series(conn: sa.Connection, site_id: str, specs: Specs, start: datetime, end: datetime,
                  resolution: Resolution, now: datetime) -> Rows:
    """What ``counter_series_many`` returns for the same arguments, from the cache where it can."""
    width = WIDTHS.get(resolution)
    if width is None or not any(m for m, _ in specs):
        return counter_series_many(conn, specs, start, end, resolution)
    a = ceil_time(start, width)
    complete = min(floor_time(now, width), floor_time(end, width))  # buckets before this are done
    if complete <= a:
        return counter_series_many(conn, specs, start, end, resolution)
    key = spec_key(resolution, specs)
    with conn.connection.cursor() as cur:  # plain tuples: see counter_series_many
        cur.execute("SELECT bucket, sums FROM series_cache WHERE spec = %s AND bucket >= %s AND bucket < %s"
                    " ORDER BY bucket", (key, a, complete))
        cached = cur.fetchall()
    expected = int((complete - a) / width)
    rows: dict[datetime, Flat | None] = {}
    if len(cached) < expected:
        have = {r[0] for r in cached}
        grid = [a + i * width for i in range(expected)]
        rows = _fill(conn, site_id, key, resolution, specs, _runs(grid, have, width), a, complete)
    # a bucket no series has a row in is cached as NULL, and left out as the rollups leave it out
    out: Rows = [(b, s) for b, s in cached if s is not None]
    if rows:
        out = sorted(out + [(b, v) for b, v in rows.items() if v is not None], key=lambda r: r[0])
    return out + counter_series_many(conn, specs, complete, end, resolution)


def _fill(conn: sa.Connection, site_id: str, key: str, resolution: Resolution, specs: Specs,
          runs: list[tuple[datetime, datetime]], a: datetime, complete: datetime
          ) -> dict[datetime, Flat | None]:
    """Compute the missing complete buckets under the exclusive lock and store them (empty ones
    too, so a gap in the data is not recomputed on every call); returns what it computed."""
    if len(runs) > MAX_RUNS:
        runs = [(runs[0][0], runs[-1][1])]
    width = WIDTHS[resolution]
    computed: dict[datetime, Flat | None] = {}
    with conn.engine.begin() as w:
        w.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SERIES_CACHE_LOCK})
        for lo, hi in runs:
            t = lo
            while t < hi:
                computed[t] = None
                t += width
            for b, values in counter_series_many(w, specs, lo, hi, resolution):
                computed[b] = values
        # spec keys of this site and resolution that are no longer asked for (its meters changed)
        w.execute(sa.text("DELETE FROM series_cache WHERE site_id = :s AND resolution = :r AND spec <> :k"),
                  {"s": site_id, "r": resolution, "k": key})
        w.execute(sa.text(
            "INSERT INTO series_cache (spec, resolution, bucket, site_id, sums)"
            " VALUES (:k, :r, :b, :s, CAST(:sums AS float8[]))"
            " ON CONFLICT (spec, bucket) DO UPDATE SET sums = EXCLUDED.sums"
        ), [{"k": key, "r": resolution, "b": b, "s": site_id, "sums": v} for b, v in computed.items()])
    return computed
