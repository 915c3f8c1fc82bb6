"""Interval energy from cumulative counters: the reference the SQL rollups must agree with.

A counter (kWh, m³, t, GJ, hours, units) is stored as read. Energy over an interval is derived
from pairs of readings, and every pair either counts with known timing (``delta``, and its
seconds are ``covered``), counts with unknown timing (``gap_delta``), or does not count — its
time is then uncovered. A window's ``coverage`` = covered seconds ÷ window seconds tells how
much of the window the delta really describes; missing data is never silently a zero.

Rules, applied to one series (one meter, one quantity):

1. Samples. Readings are ordered by time (arrival order is irrelevant; a series has at most one
   reading per time). Readings the gateway flagged OUT_OF_RANGE or STALE and non-finite values
   are not samples: the meter did not really measure them (a frozen meter's repeated value would
   otherwise claim zero consumption as covered). The gateway's COUNTER_RESET and SPIKE flags are
   not used: they depend on arrival order and gateway restarts, the rules below do not.
2. Single-sample outliers. A sample r[i] with both neighbours is a spike, and is dropped, when
   r[i-1] ≤ r[i+1] < r[i] (up-spike: the next sample agrees with the previous one) or
   r[i+1] ≥ r[i-1] > r[i] (dip, e.g. a read error returning 0). Flags use the raw neighbours, so
   a spike can take the genuine sample next to it along (both dropped); that loses no energy,
   the surrounding pair simply gets longer.
3. Pairs. Each kept sample is paired with the previous kept sample, gap = time difference,
   d = cur − prev. A kept sample preceded by more than ``MAX_RUN`` dropped samples is not paired
   (a "break": the data around it is too erratic to trust, the time is uncovered). The bound
   keeps the SQL version's look-back fixed; single-sample faults drop at most two in a row.
   - d ≥ 0, gap ≤ ``MAX_GAP``: the increase is ``delta``, the gap seconds are ``covered``.
   - d ≥ 0, gap > ``MAX_GAP``: the increase is ``gap_delta`` (energy known, timing unknown).
   - d < 0, the meter's ``counter_wrap`` W known, prev > W/2 and cur < W/2: a rollover, the
     increase W − prev + cur is treated like d ≥ 0.
   - d < 0, cur ≤ prev/2: a reset (meter cleared or replaced, restarted from 0): the increase
     since the restart, cur (not below 0), is ``gap_delta``; the energy between prev and the
     reset is unknowable, the pair is uncovered.
   - d < 0 otherwise: a backward step (register jitter, a replacement meter that did not start
     near 0): nothing is counted, the pair is uncovered. Counting cur as a reset here would
     turn a 0.01 kWh wobble into the whole register value.
   - a recorded exchange (a meter replaced, ``Exchange``) at an instant in [prev, cur): the
     increase is (old final − prev) + (cur − new initial), each not below 0, counted like
     d ≥ 0 — the energy across the swap is known, so its time stays covered.
   - Rated power (kWh counters whose meter has ``rated_power_kw``): an increase above
     rated_kw × gap hours × ``SPIKE_FACTOR`` + ``STEP_ALLOWANCE_KWH`` is impossible; it counts
     nowhere and the pair is uncovered (a level shift, e.g. a decoding fault, that rule 2
     cannot see). The allowance covers register resolution (one 0.01–1 kWh step arriving in
     a one-second poll), as the gateway's own check allows one register step.
4. Buckets and windows. A pair belongs wholly to the bucket (or window) holding cur.time, so a
   pair straddling an edge counts in the later bucket: at a window's edges the error is at most
   one polling interval of energy and of covered time. For the same reason covered seconds of
   one bucket can exceed its width (a 5-minute pair ends in one minute); ``coverage`` is
   clipped to 1.

Non-counter quantities have no energy (NULL in the rollups).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# A module import, not a name: rollups imports this module's rules in turn.
from lingtan.kernel.timegrid import floor_time

# Longest pair whose increase is still attributed in time: longer than any sane polling
# interval, short enough that a 15-minute KPI window is not filled from an hour-long hole.
MAX_GAP = timedelta(minutes=15)
# At most this many dropped samples between two kept ones still form a pair (rule 3).
MAX_RUN = 4
# Headroom over rated power × time before a counter step is a spike: motors run above nameplate
# (service factor 1.15), transformers take short overloads, and two readings' timestamps carry
# poll jitter. 1.5 is the project's choice, not a standard; the gateway flags by the same limit.
SPIKE_FACTOR = 1.5
STEP_ALLOWANCE_KWH = 1.0

Where = Literal["delta", "gap_delta", "none"]
Kind = Literal["count", "gap", "rollover", "reset", "backward", "step_spike", "break", "exchange"]


@dataclass(frozen=True)
class CounterSample:
    time: datetime
    value: float


@dataclass(frozen=True)
class Exchange:
    """A counter replaced at ``time``: the old one read ``old_final`` last, the new one started at
    ``new_initial`` (the site model's ``exchanges``)."""

    time: datetime
    old_final: float
    new_initial: float


@dataclass(frozen=True)
class Increment:
    """One pair of kept samples: what it counts and where."""

    start: datetime  # the previous kept sample
    end: datetime  # the sample whose bucket the pair belongs to
    increase: float  # 0 unless ``where`` is delta or gap_delta
    where: Where
    kind: Kind

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class IntervalEnergy:
    delta: float  # increase over covered pairs
    covered_s: float  # seconds those pairs span
    gap_delta: float  # increase over long gaps and since resets: real, timing unknown
    window_s: float

    @property
    def coverage(self) -> float:
        """Share of the window the delta describes, 0..1 (an empty window is fully covered)."""
        if self.window_s <= 0:
            return 1.0
        return min(1.0, max(0.0, self.covered_s / self.window_s))


def spikes(values: Sequence[float]) -> list[bool]:
    """Rule 2 for each of ``values`` (time-ordered); the first and last are never spikes."""
    flags = [False] * len(values)
    for i in range(1, len(values) - 1):
        before, v, after = values[i - 1], values[i], values[i + 1]
        flags[i] = (before <= after < v) or (after >= before > v)
    return flags


def _ordered(samples: Iterable[CounterSample]) -> list[CounterSample]:
    ordered = sorted((s for s in samples if math.isfinite(s.value)), key=lambda s: s.time)
    for a, b in itertools.pairwise(ordered):
        if a.time == b.time:
            raise ValueError(f"two samples at {a.time.isoformat()}")
    return ordered


Step = Literal["count", "rollover", "reset", "backward"]


def counter_step(prev: float, cur: float, wrap: float | None) -> tuple[Step, float]:
    """Rule 3's reading of one step of a counter: what happened and the increase it counts.

    The one place this rule lives: the rollup SQL mirrors it (tests/test_energy_sql.py holds them
    equal), the gateway flags with it and the counter-reset alert fires on it.
    """
    # Operations and their order mirror the SQL in lingtan/core/rollups.py, so both give the same
    # floating-point results.
    if cur >= prev:
        return "count", cur - prev
    if wrap is not None and prev > wrap / 2 and cur < wrap / 2:
        return "rollover", wrap - prev + cur
    if cur <= prev / 2:
        return "reset", max(cur, 0.0)
    return "backward", 0.0


def step_limit(rated_kw: float, gap_s: float, allowance: float = STEP_ALLOWANCE_KWH) -> float:
    """The largest increase a kWh counter of a meter rated ``rated_kw`` can make in ``gap_s``
    seconds (rule 3, rated power); ``allowance`` is one register step."""
    return SPIKE_FACTOR * rated_kw * gap_s / 3600.0 + allowance


def _pair(prev: CounterSample, cur: CounterSample, wrap: float | None, rated_kw: float | None,
          max_gap: timedelta, exchanges: Sequence[Exchange] = ()) -> Increment:
    gap_s = (cur.time - prev.time).total_seconds()
    swap = next((x for x in exchanges if prev.time <= x.time < cur.time), None)
    kind: Step | Literal["exchange"]
    if swap is not None:  # the same operations, in the same order, as sql/counter_minutes.sql
        kind = "exchange"
        increase = max(swap.old_final - prev.value, 0.0) + max(cur.value - swap.new_initial, 0.0)
    else:
        kind, increase = counter_step(prev.value, cur.value, wrap)
    if kind == "backward":
        return Increment(prev.time, cur.time, 0.0, "none", "backward")
    if rated_kw is not None and increase > step_limit(rated_kw, gap_s):
        return Increment(prev.time, cur.time, 0.0, "none", "step_spike")
    if kind == "reset":
        return Increment(prev.time, cur.time, increase, "gap_delta", "reset")
    if gap_s > max_gap.total_seconds():
        return Increment(prev.time, cur.time, increase, "gap_delta", "gap")
    return Increment(prev.time, cur.time, increase, "delta", kind)  # type: ignore[arg-type]


def increments(samples: Iterable[CounterSample], *, wrap: float | None = None,
               rated_kw: float | None = None, max_gap: timedelta = MAX_GAP,
               exchanges: Sequence[Exchange] = ()) -> list[Increment]:
    """Every pair of kept samples, in time order (rules 1–3; ``samples`` in any order).

    ``wrap``: the meter's counter_wrap; ``rated_kw``: its rated power, for kWh counters only;
    ``exchanges``: the series' recorded meter replacements.
    """
    swaps = sorted(exchanges, key=lambda x: x.time)
    ordered = _ordered(samples)
    dropped = spikes([s.value for s in ordered])
    out: list[Increment] = []
    prev: int | None = None
    for i, sample in enumerate(ordered):
        if dropped[i]:
            continue
        if prev is not None:
            if i - prev - 1 > MAX_RUN:
                out.append(Increment(ordered[prev].time, sample.time, 0.0, "none", "break"))
            else:
                out.append(_pair(ordered[prev], sample, wrap, rated_kw, max_gap, swaps))
        prev = i
    return out


def _sum(incs: Iterable[Increment]) -> tuple[float, float, float]:
    delta = covered = gap = 0.0
    for inc in incs:
        if inc.where == "delta":
            delta += inc.increase
            covered += inc.seconds
        elif inc.where == "gap_delta":
            gap += inc.increase
    return delta, covered, gap


def interval_energy(samples: Iterable[CounterSample], start: datetime, end: datetime, *,
                    wrap: float | None = None, rated_kw: float | None = None,
                    max_gap: timedelta = MAX_GAP, exchanges: Sequence[Exchange] = ()) -> IntervalEnergy:
    """Energy of the pairs whose later sample lies in [start, end); the earlier one may be before
    ``start``. Pass the whole series (or enough around the window): spike flags and pairs
    depend on the samples next to the window's edges."""
    incs = increments(samples, wrap=wrap, rated_kw=rated_kw, max_gap=max_gap, exchanges=exchanges)
    delta, covered, gap = _sum(i for i in incs if start <= i.end < end)
    return IntervalEnergy(delta, covered, gap, (end - start).total_seconds())


def bucket_energy(samples: Iterable[CounterSample], width: timedelta, *, wrap: float | None = None,
                  rated_kw: float | None = None, max_gap: timedelta = MAX_GAP,
                  exchanges: Sequence[Exchange] = ()) -> dict[datetime, tuple[float, float, float]]:
    """(delta, covered seconds, gap_delta) per bucket of ``width``, on the rollups' grid.

    Every bucket holding a sample appears (with zeros when no pair ends in it), as a rollup row
    does; a bucket with no sample has no entry.
    """
    samples = list(samples)
    by_bucket: dict[datetime, list[Increment]] = {
        floor_time(s.time, width): [] for s in samples if math.isfinite(s.value)}
    for inc in increments(samples, wrap=wrap, rated_kw=rated_kw, max_gap=max_gap, exchanges=exchanges):
        by_bucket[floor_time(inc.end, width)].append(inc)
    return {bucket: _sum(incs) for bucket, incs in sorted(by_bucket.items())}
