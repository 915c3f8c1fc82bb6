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


CounterRequest = tuple[tuple[str, ...], str, datetime, datetime]  # (meters, quantity, start, end)


def counter_request(meter_ids: Sequence[str], quantity: str, start: datetime, end: datetime
                    ) -> CounterRequest:
    """The canonical form of a request: the same meters in any order are the same request."""
    return tuple(sorted(set(meter_ids))), quantity, start, end


def counter_energy(conn: sa.Connection, meter_ids: Sequence[str], quantity: str, start: datetime,
                   end: datetime) -> CounterEnergy:
    """Energy of ``quantity`` counted by ``meter_ids`` in [start, end), with its coverage."""
    return counter_energy_many(conn, [counter_request(meter_ids, quantity, start, end)])[0]


def counter_energy_many(conn: sa.Connection, requests: Sequence[CounterRequest]) -> list[CounterEnergy]:
    """``counter_energy`` of each request, in order, in one statement.

    The windows of one refresh (today, the last 15 minutes, the last 24 hours, the green-purchase
    periods) are tiled separately, but their tiles repeat — the minutes up to now are the same for
    all of them — so each distinct tile is read once, summed per (meter, quantity), and every
    request adds up its own tiles and meters from those sums. A request's figure is the same
    whether it is read alone or in a batch."""
    for _, quantity, _, _ in requests:
        _counter(quantity)
    parts: dict[tuple[str, datetime, datetime], int] = {}
    plans: list[tuple[tuple[str, ...], str, float, list[int]]] = []
    for meters, quantity, start, end in requests:
        a, b = ceil_time(start, MINUTE), ceil_time(end, MINUTE)
        window_s = max(0.0, (b - a).total_seconds())
        own = [parts.setdefault(tile, len(parts)) for tile in tiles(start, end)] if meters else []
        plans.append((meters, quantity, window_s, own))
    wanted = {(m, q) for meters, q, _, own in plans if own for m in meters}
    sums: dict[tuple[int, str, str], tuple[float, float, float]] = {}
    if wanted:
        pairs = sorted(wanted)
        params: dict[str, object] = {"m": [m for m, _ in pairs], "q": [q for _, q in pairs]}
        branches = []
        for (table, lo, hi), i in parts.items():
            params[f"a{i}"], params[f"b{i}"] = lo, hi
            branches.append(f"SELECT {i} AS i, delta, covered, gap_delta FROM {table} r"
                            " WHERE r.meter_id = k.meter_id AND r.quantity = k.quantity"
                            f" AND r.bucket >= :a{i} AND r.bucket < :b{i}")
        # Series by series (index probes on the rollups' key), never a parallel plan: the planner
        # would start workers for a scan of all meters × quantities, and on a busy server
        # launching them takes several times longer than the few hundred rows it reads.
        rows = conn.execute(sa.text(
            "SELECT t.i, k.meter_id, k.quantity, coalesce(sum(t.delta), 0), coalesce(sum(t.covered), 0),"
            " coalesce(sum(t.gap_delta), 0)"
            " FROM unnest(CAST(:m AS text[]), CAST(:q AS text[])) AS k(meter_id, quantity)"
            f" CROSS JOIN LATERAL ({' UNION ALL '.join(branches)}) t"
            " GROUP BY t.i, k.meter_id, k.quantity"
        ), params).all()
        sums = {(r[0], r[1], r[2]): (float(r[3]), float(r[4]), float(r[5])) for r in rows}
    out = []
    for meters, quantity, window_s, own in plans:
        if not own:
            out.append(CounterEnergy(0.0, 0.0, 0.0, window_s, 1.0, len(meters)))
            continue
        value = covered = gap = 0.0
        for i in own:
            for m in meters:
                s = sums.get((i, m, quantity))
                if s is not None:
                    value, covered, gap = value + s[0], covered + s[1], gap + s[2]
        # Covered time can run past the window (a pair ending just inside it started before it).
        coverage = min(1.0, covered / (window_s * len(meters))) if window_s > 0 else 1.0
        out.append(CounterEnergy(value, gap, covered, window_s, coverage, len(meters)))
    return out


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
