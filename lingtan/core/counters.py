"""Counter energy for the KPI engine, read from the rollups' delta/covered/gap_delta columns.

The per-bucket figures follow ``lingtan.core.energy`` (resets, rollovers, spikes, gaps). A window is
read as the minute buckets whose start lies in [start, end): a partial minute at the start is
left out, a partial minute at the end is taken whole — in effect both ends are rounded up to
the next whole minute, and ``window_s`` is the length of that rounded window. Pass
minute-aligned windows to avoid the rounding; a live window ending now shows the current
minute as not yet covered. The window is tiled with the coarsest aligned rollups (whole days on
the rollup grid, i.e. UTC+8 midnights, then hours, quarter hours, minutes at the edges), so a
month over many meters reads a few hundred rows per meter in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

from lingtan.core.rollups import LEVELS, MINUTE, RESOLUTIONS
from lingtan.kernel.quantities import QUANTITIES
from lingtan.kernel.timegrid import ceil_time, floor_time

Resolution = Literal["1m", "15m", "1h", "1d"]


@dataclass(frozen=True)
class CounterEnergy:
    value: float  # increase over covered pairs (timing known), summed over the meters
    gap_value: float  # increase across long gaps and since resets: real, timing unknown
    covered_s: float  # meter-seconds the value describes
    window_s: float  # length of the (minute-rounded) window
    coverage: float  # covered_s / (window_s × meters), 0..1; 1.0 with no meters
    meters: int


def _counter(quantity: str) -> None:
    q = QUANTITIES.get(quantity)
    if q is None or not q.counter:
        raise ValueError(f"{quantity!r} is not a counter quantity")


def tiles(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """(rollup table, from, to) ranges covering the minute-rounded window, coarsest first."""
    a, b = ceil_time(start, MINUTE), ceil_time(end, MINUTE)
    out: list[tuple[str, datetime, datetime]] = []
    rest = [(a, b)] if a < b else []
    for table, width, _ in reversed(LEVELS[1:]):  # 1d, 1h, 15m: aligned middles
        left = []
        for lo, hi in rest:
            c0, c1 = ceil_time(lo, width), floor_time(hi, width)
            if c0 < c1:
                out.append((table, c0, c1))
                left += [(x, y) for x, y in ((lo, c0), (c1, hi)) if x < y]
            else:
                left.append((lo, hi))
        rest = left
    out += [(RESOLUTIONS["1m"], lo, hi) for lo, hi in rest]
    return out


def counter_energy(conn: sa.Connection, meter_ids: Sequence[str], quantity: str, start: datetime,
                   end: datetime) -> CounterEnergy:
    """Energy of ``quantity`` counted by ``meter_ids`` in [start, end), with its coverage."""
    _counter(quantity)
    meters = sorted(set(meter_ids))
    a, b = ceil_time(start, MINUTE), ceil_time(end, MINUTE)
    window_s = max(0.0, (b - a).total_seconds())
    parts = tiles(start, end)
    if not meters or not parts:
        return CounterEnergy(0.0, 0.0, 0.0, window_s, 1.0, len(meters))
    params: dict[str, object] = {"m": meters, "q": quantity}
    branches = []
    for i, (table, lo, hi) in enumerate(parts):
        params[f"a{i}"], params[f"b{i}"] = lo, hi
        branches.append(f"SELECT delta, covered, gap_delta FROM {table} WHERE meter_id = ANY(:m)"
                        f" AND quantity = :q AND bucket >= :a{i} AND bucket < :b{i}")
    row = conn.execute(sa.text(
        "SELECT coalesce(sum(delta), 0), coalesce(sum(covered), 0), coalesce(sum(gap_delta), 0)"
        f" FROM ({' UNION ALL '.join(branches)}) t"
    ), params).one()
    value, covered, gap = float(row[0]), float(row[1]), float(row[2])
    # Covered time can run past the window (a pair ending just inside it started before it).
    coverage = min(1.0, covered / (window_s * len(meters))) if window_s > 0 else 1.0
    return CounterEnergy(value, gap, covered, window_s, coverage, len(meters))


Flat = list[float | None]  # (delta, covered seconds, gap_delta) of each series in turn


def counter_series_many(conn: sa.Connection, specs: Sequence[tuple[Sequence[str], str]], start: datetime,
                        end: datetime, resolution: Resolution) -> list[tuple[datetime, Flat]]:
    """For each bucket starting in [start, end) that any series has a rollup row in, in time
    order: for each (meters, quantity) spec in turn, the delta, covered seconds and gap_delta
    summed over its meters — all three None where that series has no row in the bucket (a gap,
    never zero).

    One statement for all the series: a site's series share buckets, so they come back as one
    row per bucket instead of one result set per series."""
    for _, quantity in specs:
        _counter(quantity)
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
    if not any(meters for meters, _ in specs):
        return []
    params: dict[str, object] = {"a": start, "b": end}
    branches, columns = [], []
    for i, (meters, quantity) in enumerate(specs):
        params[f"m{i}"], params[f"q{i}"] = sorted(set(meters)), quantity
        branches.append(f"SELECT {i} AS k, bucket, delta, covered, gap_delta FROM {RESOLUTIONS[resolution]}"
                        f" WHERE meter_id = ANY(%(m{i})s) AND quantity = %(q{i})s"
                        " AND bucket >= %(a)s AND bucket < %(b)s")
        # a counter's rollup row always carries all three (0 when nothing was counted), so the sums
        # are NULL exactly when the series has no row in the bucket
        columns.append(f"sum(delta) FILTER (WHERE k = {i}), sum(covered) FILTER (WHERE k = {i}),"
                       f" sum(gap_delta) FILTER (WHERE k = {i})")
    # Straight through the driver: a year of hours is 8,760 rows of 16 columns, and plain tuples
    # are several times cheaper to read than result rows.
    with conn.connection.cursor() as cur:
        cur.execute(f"SELECT bucket, ARRAY[{', '.join(columns)}] FROM ({' UNION ALL '.join(branches)}) t"
                    " GROUP BY bucket ORDER BY bucket", params)
        return cur.fetchall()  # type: ignore[return-value]


def counter_series(conn: sa.Connection, meter_ids: Sequence[str], quantity: str, start: datetime,
                   end: datetime, resolution: Resolution
                   ) -> list[tuple[datetime, float, float, float]]:
    """(bucket, delta, covered seconds, gap_delta) summed over the meters, for buckets starting in
    [start, end), in time order. A bucket without any rollup row is left out: the caller treats
    it as a gap, never as zero."""
    return [(b, v[0], v[1] or 0.0, v[2] or 0.0)  # type: ignore[misc]
            for b, v in counter_series_many(conn, [(meter_ids, quantity)], start, end, resolution)
            if v[0] is not None]
