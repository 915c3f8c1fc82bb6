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
from lingtan.kernel.quantities import QUANTITIES
from lingtan.kernel.reading import Quality
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


_UPSERT = """
INSERT INTO {table} (bucket, meter_id, quantity, count, min, max, avg, first, last,
                     delta, covered, gap_delta)
{select}
ON CONFLICT (meter_id, quantity, bucket) DO UPDATE SET
  count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
  first = EXCLUDED.first, last = EXCLUDED.last,
  delta = EXCLUDED.delta, covered = EXCLUDED.covered, gap_delta = EXCLUDED.gap_delta
"""

# The marked buckets arrive as three parallel arrays. Each bucket aggregates its own index range
# of the source (LATERAL): joined as sets, the planner may merge on (meter, quantity) alone and
# filter the time range row by row, which grows with the series' whole history.
_FROM_RAW = """
SELECT d.bucket, d.meter_id, d.quantity, a.count, a.min, a.max, a.avg, a.first, a.last,
       NULL::float8, NULL::float8, NULL::float8
FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
     AS d(meter_id, quantity, bucket)
CROSS JOIN LATERAL (
    SELECT count(*) AS count, min(r.value) AS min, max(r.value) AS max, avg(r.value) AS avg,
           (array_agg(r.value ORDER BY r.time))[1] AS first,
           (array_agg(r.value ORDER BY r.time DESC))[1] AS last
    FROM readings r
    WHERE r.meter_id = d.meter_id AND r.quantity = d.quantity
      AND r.time >= d.bucket AND r.time < d.bucket + %(width)s
) a
WHERE a.count > 0
"""

_FROM_LEVEL = """
SELECT d.bucket, d.meter_id, d.quantity, a.count, a.min, a.max, a.avg, a.first, a.last,
       a.delta, a.covered, a.gap_delta
FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
     AS d(meter_id, quantity, bucket)
CROSS JOIN LATERAL (
    SELECT sum(s.count) AS count, min(s.min) AS min, max(s.max) AS max,
           sum(s.avg * s.count) / sum(s.count) AS avg, (array_agg(s.first ORDER BY s.bucket))[1] AS first,
           (array_agg(s.last ORDER BY s.bucket DESC))[1] AS last,
           sum(s.delta) AS delta, sum(s.covered) AS covered, sum(s.gap_delta) AS gap_delta
    FROM {source} s
    WHERE s.meter_id = d.meter_id AND s.quantity = d.quantity
      AND s.bucket >= d.bucket AND s.bucket < d.bucket + %(width)s
) a
WHERE a.count > 0
"""

# A reading that is a counter sample (lingtan.core.energy rule 1): not flagged STALE or OUT_OF_RANGE,
# finite (NaN sorts above Infinity in PostgreSQL). "< 1" rather than "= 0": the planner guesses
# an equality on an expression matches 0.5 % of rows, and then fetches a series' whole history
# and sorts it instead of walking the index for the few samples next to a minute.
_SAMPLE = (f"r.quality & {int(Quality.STALE | Quality.OUT_OF_RANGE)} < 1"
           " AND r.value > '-Infinity' AND r.value < 'Infinity'")

# 1-minute buckets of counter quantities: the same aggregates as _FROM_RAW plus interval energy,
# by the rules in lingtan/core/energy.py (kept in step with energy._pair: same operations, same order).
# Work goes by time ranges of one series, not by minute: marked minutes close together form one
# range, widened to the minutes whose energy depends on its samples; every minute in a range is
# re-materialised from one index scan. Returns the keys written.
_COUNTER_FROM_RAW = f"""
WITH d AS (
    SELECT *, bucket - lag(bucket) OVER (PARTITION BY meter_id, quantity ORDER BY bucket)
              > %(join)s AS new
    FROM unnest(%(meters)s::text[], %(quantities)s::text[], %(buckets)s::timestamptz[])
         AS d(meter_id, quantity, bucket)
),
islands AS (
    SELECT meter_id, quantity, min(bucket) AS lo, max(bucket) + interval '1 minute' AS hi
    FROM (SELECT *, count(*) FILTER (WHERE new) OVER (PARTITION BY meter_id, quantity
                                                     ORDER BY bucket) AS island FROM d) d
    GROUP BY meter_id, quantity, island
),
-- an island holding samples changes the minute holding the sample before it and those holding
-- the next MAX_RUN + 1 samples after it; no samples lie in between, so widening reads few rows
widened AS (
    SELECT i.meter_id, i.quantity,
           CASE WHEN s.any THEN coalesce(date_bin('1 minute', b.time, %(origin)s), i.lo) ELSE i.lo END AS lo,
           CASE WHEN s.any THEN coalesce(date_bin('1 minute', a.time, %(origin)s) + interval '1 minute', i.hi)
                ELSE i.hi END AS hi
    FROM islands i
    CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM readings r WHERE r.meter_id = i.meter_id
                        AND r.quantity = i.quantity AND r.time >= i.lo AND r.time < i.hi
                        AND {_SAMPLE}) AS any) s
    LEFT JOIN LATERAL (SELECT r.time FROM readings r
                       WHERE r.meter_id = i.meter_id AND r.quantity = i.quantity AND r.time < i.lo
                         AND {_SAMPLE}
                       ORDER BY r.time DESC LIMIT 1) b ON s.any
    LEFT JOIN LATERAL (SELECT max(n.time) AS time FROM (
                           SELECT r.time FROM readings r
                           WHERE r.meter_id = i.meter_id AND r.quantity = i.quantity
                             AND r.time >= i.hi AND {_SAMPLE}
                           ORDER BY r.time LIMIT %(ahead)s) n) a ON s.any
),
-- widened islands that overlap are merged, so no minute is written twice
ranges AS (
    SELECT row_number() OVER (ORDER BY g.meter_id, g.quantity, g.lo) AS rid, g.*,
           (m.params->>'counter_wrap')::float8 AS wrap,
           CASE WHEN g.quantity = ANY(%(kwh)s::text[]) THEN (m.params->>'rated_power_kw')::float8
           END AS rated
    FROM (
        SELECT meter_id, quantity, min(lo) AS lo, max(hi) AS hi FROM (
            SELECT *, count(*) FILTER (WHERE new) OVER (PARTITION BY meter_id, quantity ORDER BY lo)
                      AS grp
            FROM (SELECT *, lo > max(hi) OVER (PARTITION BY meter_id, quantity ORDER BY lo
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS new
                  FROM widened) w
        ) w GROUP BY meter_id, quantity, grp
    ) g LEFT JOIN meters m ON m.id = g.meter_id
),
-- per range: its readings, the samples before it that can pair with or flag its first sample,
-- the sample after it that flags its last one
pts AS (
    SELECT g.rid, x.time, x.value, x.sample, x.inside
    FROM ranges g CROSS JOIN LATERAL (
        (SELECT r.time, r.value, true AS sample, false AS inside FROM readings r
         WHERE r.meter_id = g.meter_id AND r.quantity = g.quantity AND r.time < g.lo AND {_SAMPLE}
         ORDER BY r.time DESC LIMIT %(behind)s)
        UNION ALL
        (SELECT r.time, r.value, {_SAMPLE}, true FROM readings r
         WHERE r.meter_id = g.meter_id AND r.quantity = g.quantity
           AND r.time >= g.lo AND r.time < g.hi)
        UNION ALL
        (SELECT r.time, r.value, true, false FROM readings r
         WHERE r.meter_id = g.meter_id AND r.quantity = g.quantity AND r.time >= g.hi AND {_SAMPLE}
         ORDER BY r.time LIMIT 1)
    ) x
),
agg AS (
    SELECT rid, date_bin('1 minute', time, %(origin)s) AS bucket, count(*) AS count,
           min(value) AS min, max(value) AS max, avg(value) AS avg,
           (array_agg(value ORDER BY time))[1] AS first,
           (array_agg(value ORDER BY time DESC))[1] AS last
    FROM pts WHERE inside GROUP BY 1, 2
),
-- rule 2; the earliest sample fetched has no known predecessor and counts as kept, which can only
-- make it the partner of a pair that rule 3 breaks anyway (behind = MAX_RUN + 2)
flagged AS (
    SELECT rid, time, value, inside, row_number() OVER w AS rn,
           coalesce((lag(value) OVER w <= lead(value) OVER w AND lead(value) OVER w < value)
                    OR (lead(value) OVER w >= lag(value) OVER w AND lag(value) OVER w > value),
                    false) AS spike
    FROM pts WHERE sample
    WINDOW w AS (PARTITION BY rid ORDER BY time)
),
pairs AS (
    SELECT rid, time, value, inside, rn,
           lag(time) OVER w AS ptime, lag(value) OVER w AS pvalue, lag(rn) OVER w AS prn
    FROM flagged WHERE NOT spike
    WINDOW w AS (PARTITION BY rid ORDER BY time)
),
-- rule 3: the increase of a count or rollover (counted) or of a reset; both NULL otherwise
steps AS (
    SELECT p.rid, date_bin('1 minute', p.time, %(origin)s) AS bucket,
           extract(epoch FROM p.time - p.ptime)::float8 AS gap_s, g.rated,
           CASE WHEN p.value >= p.pvalue THEN p.value - p.pvalue
                WHEN g.wrap IS NOT NULL AND p.pvalue > g.wrap / 2 AND p.value < g.wrap / 2
                    THEN g.wrap - p.pvalue + p.value
           END AS counted,
           CASE WHEN p.value >= p.pvalue THEN NULL
                WHEN g.wrap IS NOT NULL AND p.pvalue > g.wrap / 2 AND p.value < g.wrap / 2 THEN NULL
                WHEN p.value <= p.pvalue / 2 THEN greatest(p.value, 0)
           END AS reset
    FROM pairs p JOIN ranges g USING (rid)
    WHERE p.inside AND p.ptime IS NOT NULL AND p.rn - p.prn - 1 <= %(max_run)s
),
-- rated power: an impossible increase counts nowhere
possible AS (
    SELECT rid, bucket, gap_s, reset, coalesce(counted, reset) AS increase FROM steps
    WHERE coalesce(counted, reset) IS NOT NULL
      AND (rated IS NULL OR coalesce(counted, reset)
                            <= %(factor)s * rated * gap_s / 3600.0::float8 + %(allowance)s)
),
energy AS (
    SELECT rid, bucket,
           sum(increase) FILTER (WHERE reset IS NULL AND gap_s <= %(max_gap)s) AS delta,
           sum(gap_s) FILTER (WHERE reset IS NULL AND gap_s <= %(max_gap)s) AS covered,
           sum(increase) FILTER (WHERE reset IS NOT NULL OR gap_s > %(max_gap)s) AS gap_delta
    FROM possible GROUP BY rid, bucket
)
INSERT INTO readings_1m (bucket, meter_id, quantity, count, min, max, avg, first, last,
                         delta, covered, gap_delta)
SELECT a.bucket, g.meter_id, g.quantity, a.count, a.min, a.max, a.avg, a.first, a.last,
       coalesce(e.delta, 0), coalesce(e.covered, 0), coalesce(e.gap_delta, 0)
FROM agg a JOIN ranges g USING (rid) LEFT JOIN energy e USING (rid, bucket)
ORDER BY a.rid, a.bucket
ON CONFLICT (meter_id, quantity, bucket) DO UPDATE SET
  count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
  first = EXCLUDED.first, last = EXCLUDED.last,
  delta = EXCLUDED.delta, covered = EXCLUDED.covered, gap_delta = EXCLUDED.gap_delta
RETURNING meter_id, quantity, bucket
"""

# Marked minutes of one counter series at most this far apart are re-materialised as one range:
# the minutes in between are read again, but once, instead of probing the index per minute.
JOIN_MARKS = timedelta(minutes=5)
COUNTERS = frozenset(q.name for q in QUANTITIES.values() if q.counter)
_KWH_COUNTERS = sorted(q.name for q in QUANTITIES.values() if q.counter and q.unit == "kWh")

Key = tuple[str, str, datetime]  # (meter_id, quantity, bucket start)

# Compressor state code for "loaded" (the generic screw-compressor profile the simulators and
# device profiles use: 0 off, 1 running unloaded, 2 loaded).
COMPRESSOR_LOADED = 2
HOUR = timedelta(hours=1)
COMPRESSOR_QUANTITIES = frozenset({"air_flow", "active_power", "state"})

# Per compressor hour, from the 1-minute rollups of air flow, power and state: the air delivered
# (a minute's mean flow in m³/min is that minute's air) and the sums behind mean power and flow
# over the minutes loaded throughout. Specific power needs power, flow and state of the same
# minute, so this cannot be derived from the hourly rollups of each quantity; a KPI window
# reads these hours and joins minutes only at its ragged edges.
_COMPRESSOR_MINUTES = """
SELECT f.meter_id, f.bucket, f.avg AS flow, p.avg AS kw, s.min = {loaded} AND s.max = {loaded} AS loaded
FROM readings_1m f
LEFT JOIN readings_1m p ON p.meter_id = f.meter_id AND p.bucket = f.bucket AND p.quantity = 'active_power'
LEFT JOIN readings_1m s ON s.meter_id = f.meter_id AND s.bucket = f.bucket AND s.quantity = 'state'
WHERE f.quantity = 'air_flow'
"""
# The sums of one set of minutes; compressor_1h holds them per hour, KPI windows add them up.
COMPRESSOR_SUMS = """
count(*)::int AS flow_minutes, sum(flow) AS air_m3,
count(*) FILTER (WHERE loaded)::int AS loaded_minutes, sum(flow) FILTER (WHERE loaded) AS loaded_flow_sum,
count(kw) FILTER (WHERE loaded)::int AS loaded_kw_minutes, sum(kw) FILTER (WHERE loaded) AS loaded_kw_sum
"""


def compressor_minutes(loaded: str) -> str:
    """Air flow minutes with the same minute's power and whether the state was loaded throughout;
    callers add the meter and time conditions on ``f``. ``loaded`` is the SQL of the state code."""
    return _COMPRESSOR_MINUTES.format(loaded=loaded)


_COMPRESSOR_HOURS = f"""
WITH k AS (SELECT DISTINCT * FROM unnest(%(meters)s::text[], %(hours)s::timestamptz[]) AS k(meter_id, bucket))
INSERT INTO compressor_1h (bucket, meter_id, flow_minutes, air_m3, loaded_minutes, loaded_flow_sum,
                           loaded_kw_minutes, loaded_kw_sum)
SELECT k.bucket, k.meter_id, a.*
FROM k CROSS JOIN LATERAL (
    SELECT {COMPRESSOR_SUMS} FROM ({compressor_minutes("%(loaded)s")}
        AND f.meter_id = k.meter_id AND f.bucket >= k.bucket AND f.bucket < k.bucket + interval '1 hour') m
) a
WHERE a.flow_minutes > 0
ORDER BY k.meter_id, k.bucket
ON CONFLICT (meter_id, bucket) DO UPDATE SET
  flow_minutes = EXCLUDED.flow_minutes, air_m3 = EXCLUDED.air_m3,
  loaded_minutes = EXCLUDED.loaded_minutes, loaded_flow_sum = EXCLUDED.loaded_flow_sum,
  loaded_kw_minutes = EXCLUDED.loaded_kw_minutes, loaded_kw_sum = EXCLUDED.loaded_kw_sum
"""


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
# series cache (lingtan/core/series_cache.py): a cache row is never computed from rollups that a
# refresh is rewriting, so deleting the rewritten buckets below is enough to keep it exact.
SERIES_CACHE_LOCK = 0x4C54_5343  # "LTSC"
_LEVEL_RESOLUTION = {table: name for name, table in RESOLUTIONS.items()}


def _drop_cached(conn: psycopg.Connection, table: str, buckets: set[datetime]) -> None:
    if buckets:
        conn.execute("DELETE FROM series_cache WHERE resolution = %s AND bucket = ANY(%s)",
                     (_LEVEL_RESOLUTION[table], sorted(buckets)))


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

