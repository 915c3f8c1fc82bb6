"""Each structure node's electricity per time-of-use band and its largest quarter hour, per whole
day, kept so a month of a large tree reads one row per day instead of every node's every quarter
hour (docs/domain.md, "Metering structure"; docs/architecture.md, "Caches").

A day's figures never change unless data arrives late, so they are stored in
``structure_day_cache`` under a key made of the nodes' counter combinations, the tariff and the
site's zone: a changed structure or tariff is simply another key. Exactness follows the series
cache (``lingtan.core.series_cache``): the rollup refresher deletes the cached days whose day
rollups it rewrites, holding ``SERIES_CACHE_LOCK`` shared, and a reader fills missing days holding
it exclusively, computing them only once it has the lock. Only days that have ended are cached,
and only for tariffs whose band edges are on the quarter hour (the 15-minute rollups then place
every kWh in its band).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

from lingtan.core.rollups import SERIES_CACHE_LOCK
from lingtan.core.site_schema import Tariff
from lingtan.core.tariff import DayProfile, NodeProfile, form_columns, quarter_aligned
from lingtan.kernel.timegrid import ORIGIN, ceil_time, floor_time

DAY = timedelta(days=1)
VERSION = "1"  # bump when the stored layout changes: old rows are another key, and are dropped

Form = Mapping[tuple[str, str], float]


def cacheable(tariff: Tariff, timezone: str, first: datetime, last: datetime) -> bool:
    """Band edges and the zone's offset on the quarter hour, so quarter-hour rollups fall wholly
    inside one band."""
    return first < last and quarter_aligned(tariff, ZoneInfo(timezone), first, last)


def whole_days(a: datetime, b: datetime, now: datetime) -> tuple[datetime, datetime]:
    """[first, last) of the rollup days inside [a, b) that have ended by ``now`` (empty: first ≥ last)."""
    return ceil_time(a, DAY), min(floor_time(b, DAY), floor_time(now, DAY))


def key(forms: Sequence[Form], tariff: Tariff, timezone: str) -> str:
    text = json.dumps([VERSION, timezone, tariff.model_dump(mode="json"),
                       [sorted((m, q, c) for (m, q), c in f.items()) for f in forms]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def band_map(tariff: Tariff) -> list[int]:
    """Band index of each minute of the local day; ``len(tariff.bands)`` outside every band."""
    out = [len(tariff.bands)] * 1440
    for i, band in enumerate(tariff.bands):
        for m in band.minutes():
            out[m] = i
    return out


def _first_minutes(tariff: Tariff) -> dict[int, int]:
    """A minute of the local day in each band (and, at index ``len(bands)``, one no band covers)."""
    first: dict[int, int] = {}
    for minute, i in enumerate(band_map(tariff)):
        first.setdefault(i, minute)
    return first


def summed(conn: sa.Connection, site_id: str, forms: Sequence[Form], tariff: Tariff, timezone: str,
           first: datetime, last: datetime) -> list[NodeProfile]:
    """Each form's figures over the whole days [first, last), filling the days not cached yet: its
    kWh per band as a day profile ``tariff.cost_by_band`` prices (each band's kWh at a minute of that
    band, the rest at a minute no band covers) and its largest quarter hour."""
    width = len(tariff.bands) + 1
    stride = width + 3  # bands, unplaced, peak kWh, peak time (epoch seconds)
    if first >= last or not forms:
        return [NodeProfile(DayProfile({}, 0.0), None, None) for _ in forms]
    k = key(forms, tariff, timezone)
    rows = {r[0]: r[1] for r in conn.execute(sa.text(
        "SELECT day, data FROM structure_day_cache WHERE key = :k AND day >= :a AND day < :b"),
        {"k": k, "a": first, "b": last})}
    wanted = [first + i * DAY for i in range(int((last - first) / DAY))]
    missing = [d for d in wanted if d not in rows]
    if missing:
        rows.update(_fill(conn, site_id, k, forms, tariff, timezone, missing, stride))
    days = np.stack([np.frombuffer(rows[d], dtype=np.float64).reshape(len(forms), stride) for d in wanted])
    totals = days[:, :, :width + 1].sum(axis=0)
    peaks = days[:, :, width + 1]
    quiet = np.isnan(peaks).all(axis=0)  # no quarter hour on any day
    best = np.nanargmax(np.where(np.isnan(peaks), -np.inf, peaks), axis=0)
    minutes = _first_minutes(tariff)
    out = []
    for i in range(len(forms)):
        placed = {minutes[j]: float(totals[i, j]) for j in range(width) if totals[i, j] and j in minutes}
        day = DayProfile(placed, float(totals[i, width]))
        if quiet[i]:
            out.append(NodeProfile(day, None, None))
        else:
            d = int(best[i])
            at = datetime.fromtimestamp(float(days[d, i, width + 2]), UTC)
            out.append(NodeProfile(day, float(peaks[d, i]), at))
    return out


def _fill(conn: sa.Connection, site_id: str, k: str, forms: Sequence[Form], tariff: Tariff, timezone: str,
          days: list[datetime], stride: int) -> dict[datetime, bytes]:
    """Compute ``days`` under the exclusive lock and store them; returns what it stored."""
    width = stride - 3
    blank = [0.0] * width + [0.0, float("nan"), 0.0]
    data = {d: np.array(blank * len(forms), dtype=np.float64) for d in days}
    with conn.engine.begin() as w:
        w.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SERIES_CACHE_LOCK})
        w.execute(sa.text("SET LOCAL work_mem = '64MB'"))
        w.execute(sa.text("SET LOCAL jit = off"))  # a large, simple statement: compiling it costs more
        rows = w.execute(sa.text(
            "WITH k AS (SELECT * FROM unnest(CAST(:n AS int[]), CAST(:m AS text[]), CAST(:q AS text[]),"
            "  CAST(:c AS float8[])) AS k(n, m, q, c)),"
            " quarters AS (SELECT k.n, r.bucket, sum(k.c * r.delta) AS kwh, sum(k.c * r.gap_delta) AS gap"
            "  FROM readings_15m r JOIN k ON r.meter_id = k.m AND r.quantity = k.q"
            "  WHERE r.bucket >= :a AND r.bucket < :b AND date_bin('1 day', r.bucket, :origin) = ANY(:days)"
            "  GROUP BY k.n, r.bucket)"
            " SELECT n, date_bin('1 day', bucket, :origin) AS day,"
            "  (CAST(:map AS int[]))[1 + (extract(hour FROM bucket AT TIME ZONE :tz) * 60"
            "   + extract(minute FROM bucket AT TIME ZONE :tz))::int] AS band,"
            "  sum(kwh), sum(gap), max(kwh), (array_agg(bucket ORDER BY kwh DESC, bucket))[1]"
            " FROM quarters GROUP BY 1, 2, 3"),
            {**form_columns(forms), "a": days[0], "b": days[-1] + DAY, "days": days,
             "origin": ORIGIN, "tz": timezone, "map": band_map(tariff)}).all()
        for i, day, band, kwh, gap, top, at in rows:
            d, base = data[day], i * stride
            d[base + band] += float(kwh)
            d[base + width] += float(gap)
            peak = d[base + width + 1]
            if top is not None and (peak != peak or float(top) > peak):
                d[base + width + 1], d[base + width + 2] = float(top), at.timestamp()
        # one tariff is in force on a day, so another key of the site for these days is an old
        # structure or tariff, never asked for again
        w.execute(sa.text("DELETE FROM structure_day_cache WHERE site_id = :s AND key <> :k"
                          " AND day = ANY(:days)"), {"s": site_id, "k": k, "days": days})
        w.execute(sa.text(
            "INSERT INTO structure_day_cache (key, day, site_id, data) VALUES (:k, :d, :s, :data)"
            " ON CONFLICT (key, day) DO UPDATE SET data = EXCLUDED.data"),
            [{"k": k, "d": d, "s": site_id, "data": v.tobytes()} for d, v in data.items()])
    return {d: v.tobytes() for d, v in data.items()}
