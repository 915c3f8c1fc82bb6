"""Maintained rollup tables: 1 min from raw rows, then 15 min, 1 h and 1 day from the level below.

Writers only mark the (meter, quantity, minute) buckets they touched, in `rollup_dirty`, in the
same transaction as the readings; `refresh_dirty` re-materialises marked buckets and clears the
marks. Late data therefore re-materialises exactly what it changed, a crash can never lose a
mark, and writing stays cheap however many series a batch touches.

Counter quantities also get interval energy per bucket — ``delta``, ``covered`` (seconds) and
``gap_delta`` — by the rules of ``lingtan.core.energy``, which is the reference this SQL agrees
with; higher levels sum them. A minute's energy depends on readings outside it: the samples
just before it (the previous kept sample, and the neighbours that decide whether those are
spikes) and the first sample after it (whether its last sample is a spike). So refreshing
marked counter minutes also re-materialises the minute holding the sample before them and the
minutes holding the next ``MAX_RUN + 1`` samples after them — found from the data rather than
assumed to be the adjacent minutes, so sparse polling is handled too. In live operation that
is the previous minute, whose last sample has just got its successor; this roughly doubles the
rows a counter refresh reads. A late reading is thus never more than one refresh from correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg

from lingtan.core import energy
from lingtan.kernel.quantities import COUNTERS, QUANTITIES
from lingtan.kernel.reading import Quality
from lingtan.kernel.sqlfiles import sql
from lingtan.kernel.timegrid import ORIGIN, floor_time

# (table, bucket width, source table or None for raw readings)
LEVELS: list[tuple[str, timedelta, str | None]] = [
    ("readings_1m", timedelta(minutes=1), None),
    ("readings_15m", timedelta(minutes=15), "readings_1m"),
    ("readings_1h", timedelta(hours=1), "readings_15m"),
    ("readings_1d", timedelta(days=1), "readings_1h"),
]
RESOLUTIONS = {"1m": "readings_1m", "15m": "readings_15m", "1h": "readings_1h", "1d": "readings_1d"}
MINUTE = timedelta(minutes=1)


def _sql(name: str) -> str:
    return sql("lingtan.core", name)


# A reading that is a counter sample (lingtan.core.energy rule 1): not flagged STALE or OUT_OF_RANGE,
# finite (NaN sorts above Infinity in PostgreSQL). "< 1" rather than "= 0": the planner guesses
# an equality on an expression matches 0.5 % of rows, and then fetches a series' whole history
# and sorts it instead of walking the index for the few samples next to a minute.
_SAMPLE = (f"r.quality & {int(Quality.STALE | Quality.OUT_OF_RANGE)} < 1"
           " AND r.value > '-Infinity' AND r.value < 'Infinity'")


# Marked minutes of one counter series at most this far apart are re-materialised as one range:
# the minutes in between are read again, but once, instead of probing the index per minute.
JOIN_MARKS = timedelta(minutes=5)
_KWH_COUNTERS = sorted(q.name for q in QUANTITIES.values() if q.counter and q.unit == "kWh")

Key = tuple[str, str, datetime]  # (meter_id, quantity, bucket start)

# Compressor state code for "loaded" (the generic screw-compressor profile the simulators and
# device profiles use: 0 off, 1 running unloaded, 2 loaded).
COMPRESSOR_LOADED = 2
HOUR = timedelta(hours=1)
COMPRESSOR_QUANTITIES = frozenset({"air_flow", "active_power", "state"})

# Per compressor hour: sql/compressor_minutes.sql says why these sums exist.
COMPRESSOR_SUMS = _sql("compressor_sums")


def compressor_minutes(loaded: str) -> str:
    """Air flow minutes with the same minute's power and whether the state was loaded throughout;
    callers add the meter and time conditions on ``f``. ``loaded`` is the SQL of the state code."""
    return _sql("compressor_minutes").format(loaded=loaded)


_COMPRESSOR_HOURS = _sql("compressor_hours").format(sums=COMPRESSOR_SUMS,
                                                    minutes=compressor_minutes("%(loaded)s"))
# 1-minute buckets of counters with their interval energy (sql/counter_minutes.sql)
_COUNTER_FROM_RAW = _sql("counter_minutes").format(sample=_SAMPLE)
_UPSERT, _FROM_RAW, _FROM_LEVEL = _sql("rollup_upsert"), _sql("rollup_from_raw"), _sql("rollup_from_level")




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


def _arrays(keys: set[Key]) -> dict[str, list]:  # type: ignore[type-arg]
    ordered = sorted(keys)
    return {"meters": [k[0] for k in ordered], "quantities": [k[1] for k in ordered],
            "buckets": [k[2] for k in ordered]}


def _refresh_minutes(conn: psycopg.Connection, keys: set[Key]) -> set[Key]:
    """Re-materialise minute buckets; returns every key written or asked for, for the level above."""
    counters = {k for k in keys if k[1] in COUNTERS}
    others = keys - counters
    if others:
        conn.execute(_UPSERT.format(table="readings_1m", select=_FROM_RAW),
                     {**_arrays(others), "width": MINUTE})
    written: set[Key] = set()
    if counters:
        rows = conn.execute(_COUNTER_FROM_RAW, {
            **_arrays(counters), "origin": ORIGIN, "behind": energy.MAX_RUN + 2,
            "ahead": energy.MAX_RUN + 1, "max_run": energy.MAX_RUN, "kwh": _KWH_COUNTERS,
            "join": JOIN_MARKS,
            "factor": energy.SPIKE_FACTOR, "allowance": energy.STEP_ALLOWANCE_KWH,
            "max_gap": energy.MAX_GAP.total_seconds(),
        }).fetchall()
        written = {(r[0], r[1], r[2]) for r in rows}
    return keys | written


def refresh_compressor_hours(conn: psycopg.Connection, hours: set[tuple[str, datetime]]) -> None:
    """Re-materialise the ``compressor_1h`` rows of these (meter, hour start) pairs from the
    1-minute rollups; pairs whose meter reports no air flow in that hour write nothing."""
    if not hours:
        return
    ordered = sorted(hours)
    conn.execute(_COMPRESSOR_HOURS, {"meters": [h[0] for h in ordered], "hours": [h[1] for h in ordered],
                                     "loaded": float(COMPRESSOR_LOADED)})


def backfill_compressor_hours(conn: psycopg.Connection) -> int:
    """Fill ``compressor_1h`` for every hour the rollups hold air flow for; returns the meters done."""
    meters = [r[0] for r in conn.execute(
        "SELECT DISTINCT meter_id FROM readings_1d WHERE quantity = 'air_flow' ORDER BY 1").fetchall()]
    for meter in meters:
        hours = conn.execute("SELECT bucket FROM readings_1h WHERE meter_id = %s AND quantity = 'air_flow'",
                             (meter,)).fetchall()
        refresh_compressor_hours(conn, {(meter, h[0]) for h in hours})
    return len(meters)


# Held shared by every rollup refresh until it commits, and exclusively by a reader filling the
# series cache or the structure's day cache (lingtan/core/series_cache.py, structure_cache.py):
# a cache row is never computed from rollups that a refresh is rewriting, so deleting the
# rewritten buckets below is enough to keep it exact.
SERIES_CACHE_LOCK = 0x4C54_5343  # "LTSC"
_LEVEL_RESOLUTION = {table: name for name, table in RESOLUTIONS.items()}


def _drop_cached(conn: psycopg.Connection, table: str, buckets: set[datetime]) -> None:
    if buckets:
        conn.execute("DELETE FROM series_cache WHERE resolution = %s AND bucket = ANY(%s)",
                     (_LEVEL_RESOLUTION[table], sorted(buckets)))
        if table == "readings_1d":  # the structure's days (lingtan/core/structure_cache.py)
            conn.execute("DELETE FROM structure_day_cache WHERE day = ANY(%s)", (sorted(buckets),))


def refresh_keys(conn: psycopg.Connection, keys: set[Key]) -> None:
    """Re-materialise the given minute buckets (and, for counters, the neighbours their energy
    depends on) and every bucket above them."""
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (SERIES_CACHE_LOCK,))
    conn.execute("SET LOCAL work_mem = '32MB'")  # first/last aggregates sort; keep it in memory
    # These statements run often over few rows each; the planner's cost guesses for the many
    # LATERAL probes would otherwise buy seconds of JIT compilation per refresh.
    conn.execute("SET LOCAL jit = off")
    level_keys = _refresh_minutes(conn, set(keys)) if keys else set()
    refresh_compressor_hours(conn, {(m, floor_time(b, HOUR)) for m, q, b in level_keys
                                    if q in COMPRESSOR_QUANTITIES})
    for table, width, source in LEVELS[1:]:
        level_keys = {(m, q, floor_time(b, width)) for m, q, b in level_keys}
        if not level_keys:
            return
        conn.execute(_UPSERT.format(table=table, select=_FROM_LEVEL.format(source=source)),
                     {**_arrays(level_keys), "width": width})
        _drop_cached(conn, table, {b for m, q, b in level_keys if q in COUNTERS})


# Held by every `refresh_dirty` transaction, so refreshes run one after another whichever process
# runs them. Two at once would claim different minutes of the same series (SKIP LOCKED) and each
# rebuild the shared 15 min, 1 h and 1 day buckets from a snapshot without the other's minutes:
# whichever commits last would leave those buckets short. One refresh commits before the next
# claims, so every level is built from committed levels below it. "LTROLLUP".
REFRESH_LOCK = 0x4C54_524F_4C4C_5550


def refresh_dirty(conn: psycopg.Connection, limit: int = 20_000) -> int:
    """Claim up to ``limit`` marked buckets, re-materialise them, clear the marks; commits.

    Any number of processes may call this (the API, ingest workers, `lingtan rollups`): each
    call waits for ``REFRESH_LOCK`` while another refresh is running, and a crash leaves the
    marks in place for the next one. Returns how many buckets were refreshed.
    """
    with conn.transaction():
        # no marks, no lock: an idle refresher polling every few seconds never queues behind one
        # that is working, and holds nothing while there is nothing to do
        if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM rollup_dirty)").fetchone()[0]:  # type: ignore[index]
            return 0
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (REFRESH_LOCK,))
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
