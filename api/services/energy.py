"""Counter energy for the KPI engine, read from the rollups' delta/covered/gap_delta columns.

The per-bucket figures follow ``lingtan.energy`` (resets, rollovers, spikes, gaps). A window is
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

from lingtan.quantities import QUANTITIES
from lingtan.rollups import LEVELS, MINUTE, RESOLUTIONS, ceil_time, floor_time

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


def counter_series(conn: sa.Connection, meter_ids: Sequence[str], quantity: str, start: datetime,
                   end: datetime, resolution: Resolution
                   ) -> list[tuple[datetime, float, float, float]]:
    """(bucket, delta, covered seconds, gap_delta) summed over the meters, for buckets starting in
    [start, end), in time order. A bucket without any rollup row is left out: the caller treats
    it as a gap, never as zero."""
    _counter(quantity)
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
    meters = sorted(set(meter_ids))
    if not meters:
        return []
    rows = conn.execute(sa.text(
        f"SELECT bucket, sum(delta), sum(covered), sum(gap_delta) FROM {RESOLUTIONS[resolution]}"
        " WHERE meter_id = ANY(:m) AND quantity = :q AND bucket >= :a AND bucket < :b"
        " GROUP BY bucket ORDER BY bucket"
    ), {"m": meters, "q": quantity, "a": start, "b": end})
    return [(r[0], float(r[1] or 0.0), float(r[2] or 0.0), float(r[3] or 0.0)) for r in rows]
