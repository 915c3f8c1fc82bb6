"""Interval energy from counters (lingtan/core/energy.py): properties against a known true trajectory,
and hand-worked examples of every rule."""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingtan.core.energy import (
    MAX_GAP,
    MAX_RUN,
    CounterSample,
    IntervalEnergy,
    bucket_energy,
    increments,
    interval_energy,
)

# Just before a day boundary of the rollup grid (16:00 UTC = midnight UTC+8), 7 s past a minute.
T0 = datetime(2026, 11, 20, 15, 31, 7, tzinfo=UTC)


@dataclass
class Scenario:
    """A counter observed with faults, and the truth behind it."""

    samples: list[CounterSample]  # what the meter reported, shuffled
    energy: dict[datetime, float]  # true cumulative energy at every sample time
    true_times: list[datetime]  # every time the true trajectory is known at (a superset)
    true_energy: list[float]
    rated_kw: float  # the trajectory never exceeds it
    wrap: float | None

    def true(self, t: datetime) -> float:
        """True cumulative energy at any time: constant power between known points."""
        i = bisect.bisect_right(self.true_times, t) - 1
        if i < 0:
            return self.true_energy[0]
        if i + 1 >= len(self.true_times):
            return self.true_energy[-1]
        t0, t1 = self.true_times[i], self.true_times[i + 1]
        e0, e1 = self.true_energy[i], self.true_energy[i + 1]
        return e0 + (e1 - e0) * ((t - t0) / (t1 - t0))

    def tol(self) -> float:
        scale = max([1.0, *(abs(s.value) for s in self.samples), self.wrap or 0.0])
        return 1e-9 * scale * max(1, len(self.samples))


# Polling intervals in ms: mostly a second to two minutes, sometimes a hole longer than MAX_GAP.
INTERVAL = st.integers(0, 9).flatmap(
    lambda k: st.integers(16 * 60_000, 3 * 3_600_000) if k == 0 else st.integers(1_000, 120_000))


@st.composite
def scenarios(draw: st.DrawFn, max_samples: int = 60, faults: bool = True,
              intervals: st.SearchStrategy[int] = INTERVAL) -> Scenario:
    n = draw(st.integers(2, max_samples))
    times = [T0]
    for ms in draw(st.lists(intervals, min_size=n - 1, max_size=n - 1)):
        times.append(times[-1] + timedelta(milliseconds=ms))
    rated = draw(st.sampled_from([5.0, 50.0, 400.0]))  # kW
    energy = [0.0]
    for a, b in itertools.pairwise(times):
        load = draw(st.floats(0.0, 1.0))
        energy.append(energy[-1] + load * rated * (b - a).total_seconds() / 3600.0)
    total = energy[-1]

    # gaps: the meter is read at only some of the times
    keep = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)) if faults else [1] * n
    seen = [i for i in range(n) if keep[i]]
    if len(seen) < 2:
        seen = [0, n - 1]
    obs_t = [times[i] for i in seen]
    obs_e = [energy[i] for i in seen]
    m = len(seen)

    mode = draw(st.sampled_from(["none", "reset", "rollover"])) if faults else "none"
    wrap: float | None = None
    segment = [0] * m  # which side of a reset or a rollover each observation is on
    if mode == "reset":
        # the counter restarts from 0 at some moment between two observations; it was installed
        # long before with a reading well above anything counted since the restart
        r = draw(st.integers(1, m - 1))
        at = min(obs_e[r], obs_e[r - 1] + draw(st.floats(0.0, 1.0)) * (obs_e[r] - obs_e[r - 1]))
        offset = 2 * total + 1 + draw(st.floats(0.0, 1e5))
        values = [offset + e if i < r else e - at for i, e in enumerate(obs_e)]
        segment = [0 if i < r else 1 for i in range(m)]
    elif mode == "rollover":
        # a register four times larger than the whole trajectory, rolling over while observed
        wrap = 4 * total + draw(st.floats(1.0, 1e4))
        offset = wrap - obs_e[0] - draw(st.floats(0.05, 0.95)) * (obs_e[-1] - obs_e[0])
        values = []
        for i, e in enumerate(obs_e):
            v = offset + e
            if v >= wrap:
                v -= wrap
                segment[i] = 1
            values.append(v)
    else:
        offset = draw(st.floats(0.0, 1e5))
        values = [offset + e for e in obs_e]

    if faults:
        # single-sample spikes and dips, each between two genuine readings of the same segment
        want = draw(st.lists(st.integers(0, 5), min_size=m, max_size=m))
        last = -2
        for i in range(1, m - 1):
            if want[i] == 0 and i - last >= 2 and segment[i - 1] == segment[i + 1]:
                amount = draw(st.floats(0.001, 1e4))
                if draw(st.booleans()):
                    values[i] = values[i + 1] + amount  # up: the next reading agrees with the last
                else:
                    values[i] = values[i - 1] - amount  # dip, e.g. a read error giving 0
                last = i
    samples = [CounterSample(t, v) for t, v in zip(obs_t, values, strict=True)]
    random.Random(draw(st.integers(0, 2**32))).shuffle(samples)
    return Scenario(samples, dict(zip(obs_t, obs_e, strict=True)), times, energy, rated, wrap)


@settings(max_examples=400)
@given(scenarios())
def test_pairs_never_create_energy_and_lose_only_uncovered_time(s: Scenario):
    incs = increments(s.samples, wrap=s.wrap)
    tol = s.tol()
    for inc in incs:
        true = s.energy[inc.end] - s.energy[inc.start]
        assert -tol <= inc.increase <= true + tol, inc  # never creates energy
        if inc.where == "delta":
            assert inc.increase == pytest.approx(true, abs=tol), inc  # covered means exact
            assert inc.seconds <= MAX_GAP.total_seconds()
        if inc.where == "none":
            assert inc.increase == 0.0
    # the pairs chain from the first kept sample to the last without skipping any time
    for a, b in itertools.pairwise(incs):
        assert a.end == b.start
    if incs:
        e = interval_energy(s.samples, incs[0].end, incs[-1].end + timedelta(microseconds=1),
                            wrap=s.wrap)
        true_total = s.energy[incs[-1].end] - s.energy[incs[0].start]
        uncovered_true = sum(s.energy[i.end] - s.energy[i.start] for i in incs if i.where != "delta")
        assert e.delta + e.gap_delta <= true_total + tol
        assert true_total - (e.delta + e.gap_delta) <= uncovered_true + tol  # lost only where uncovered
        assert e.covered_s == pytest.approx(sum(i.seconds for i in incs if i.where == "delta"))


@settings(max_examples=200)
@given(scenarios())
def test_rated_power_check_never_fires_on_a_possible_trajectory(s: Scenario):
    assert (increments(s.samples, wrap=s.wrap, rated_kw=s.rated_kw)
            == increments(s.samples, wrap=s.wrap))


@settings(max_examples=200)
@given(scenarios(), st.integers(0, 10 * 3_600_000), st.integers(0, 10 * 3_600_000))
def test_a_window_counts_the_pairs_ending_in_it(s: Scenario, a_ms: int, b_ms: int):
    start = T0 + timedelta(milliseconds=min(a_ms, b_ms))
    end = T0 + timedelta(milliseconds=max(a_ms, b_ms))
    e = interval_energy(s.samples, start, end, wrap=s.wrap)
    inside = [i for i in increments(s.samples, wrap=s.wrap) if start <= i.end < end]
    tol = s.tol()
    assert e.window_s == (end - start).total_seconds()
    assert e.delta == pytest.approx(sum(i.increase for i in inside if i.where == "delta"), abs=tol)
    assert e.gap_delta == pytest.approx(sum(i.increase for i in inside if i.where == "gap_delta"),
                                        abs=tol)
    assert 0.0 <= e.coverage <= 1.0
    if inside:  # never more than the truth over the time those pairs span
        assert e.delta + e.gap_delta <= s.energy[inside[-1].end] - s.energy[inside[0].start] + tol


@settings(max_examples=200)
@given(st.data(), st.integers(1_000, int(MAX_GAP.total_seconds() * 1000)))
def test_regular_fault_free_polling_is_fully_covered_and_exact(data: st.DataObject, step_ms: int):
    s = data.draw(scenarios(faults=False, intervals=st.just(step_ms)))
    times = sorted(s.energy)
    assert len(times) >= 2
    k = data.draw(st.integers(1, len(times) - 1))
    m = data.draw(st.integers(k, len(times) - 1))
    e = interval_energy(s.samples, times[k], times[m])
    assert e.coverage == pytest.approx(1.0) and e.covered_s == pytest.approx(e.window_s)
    assert e.gap_delta == 0.0
    assert e.delta == pytest.approx(s.energy[times[m - 1]] - s.energy[times[k - 1]], abs=s.tol())


@settings(max_examples=200)
@given(st.data())
def test_at_a_windows_edges_the_error_is_at_most_one_polling_interval(data: st.DataObject):
    s = data.draw(scenarios(faults=False, intervals=st.integers(1_000, 600_000)))
    times = sorted(s.energy)
    span_ms = int((times[-1] - times[0]) / timedelta(milliseconds=1))
    a = data.draw(st.integers(0, span_ms))
    b = data.draw(st.integers(a, span_ms))
    start, end = T0 + timedelta(milliseconds=a), T0 + timedelta(milliseconds=b)
    e = interval_energy(s.samples, start, end)
    poll = max((y - x).total_seconds() for x, y in itertools.pairwise(times))
    edge_energy = s.rated_kw * poll / 3600.0
    assert abs(e.covered_s - e.window_s) <= poll
    assert abs(e.delta - (s.true(end) - s.true(start))) <= 2 * edge_energy + s.tol()
    assert e.gap_delta == 0.0


def test_bucket_energy_sums_to_the_interval_and_lists_every_bucket_with_a_sample():
    samples = [CounterSample(T0 + timedelta(seconds=20 * i), 100.0 + i) for i in range(12)]
    samples[5] = CounterSample(samples[5].time, 9999.0)  # a spike still makes its bucket a row
    buckets = bucket_energy(samples, timedelta(minutes=1))
    assert set(buckets) == {T0.replace(second=0) + timedelta(minutes=i) for i in range(4)}
    assert sum(v[0] for v in buckets.values()) == pytest.approx(11.0)
    assert sum(v[1] for v in buckets.values()) == pytest.approx(220.0)
    whole = interval_energy(samples, T0, T0 + timedelta(hours=1))
    assert (whole.delta, whole.covered_s) == (pytest.approx(11.0), pytest.approx(220.0))


# ---------------------------------------------------------------------------------------------
# hand-worked examples


def series(*points: tuple[float, float]) -> list[CounterSample]:
    """(seconds after T0, value) pairs."""
    return [CounterSample(T0 + timedelta(seconds=s), v) for s, v in points]


def whole(samples: list[CounterSample], **kw) -> IntervalEnergy:
    return interval_energy(samples, T0, T0 + timedelta(days=1), **kw)


def kinds(samples: list[CounterSample], **kw) -> list[tuple[str, str, float]]:
    return [(i.kind, i.where, round(i.increase, 9)) for i in increments(samples, **kw)]


def test_reset_counts_since_the_restart_as_a_gap():
    s = series((0, 100.0), (60, 101.0), (120, 102.0), (180, 0.5), (240, 1.5))
    assert kinds(s) == [("count", "delta", 1.0), ("count", "delta", 1.0),
                        ("reset", "gap_delta", 0.5), ("count", "delta", 1.0)]
    e = whole(s)
    assert (e.delta, e.gap_delta, e.covered_s) == (3.0, 0.5, 180.0)


def test_rollover_with_a_known_wrap_is_covered_energy():
    s = series((0, 998.0), (60, 999.5), (120, 0.7), (180, 1.2))
    e = whole(s, wrap=1000.0)
    assert e.delta == pytest.approx(1.5 + 1.2 + 0.5) and e.gap_delta == 0.0 and e.covered_s == 180.0
    # without the wrap the same drop is a reset: what was counted since 0 is kept, timing unknown
    assert kinds(s)[1] == ("reset", "gap_delta", 0.7)


def test_an_up_spike_and_a_dip_are_dropped():
    for spike in (5000.0, 0.0):
        s = series((0, 10.0), (60, spike), (120, 11.0), (180, 12.0))
        assert kinds(s) == [("count", "delta", 1.0), ("count", "delta", 1.0)]
        assert increments(s)[0].seconds == 120.0  # the pair spans the dropped reading
        e = whole(s)
        assert (e.delta, e.gap_delta, e.covered_s) == (2.0, 0.0, 180.0)


def test_a_spike_takes_the_genuine_reading_after_it_along_without_losing_energy():
    # 100.3 is a spike; 100.1 then looks like a dip (100.4 ≥ 100.3): both go, 100.0 → 100.4 stays
    s = series((0, 100.0), (1, 100.3), (2, 100.1), (3, 100.4))
    assert [(i.start, i.end) for i in increments(s)] == [(T0, T0 + timedelta(seconds=3))]
    assert whole(s).delta == pytest.approx(0.4)


def test_a_gap_longer_than_max_gap_keeps_its_energy_as_gap_delta():
    s = series((0, 10.0), (60, 12.0), (60 + 16 * 60, 20.0), (120 + 16 * 60, 21.0))
    assert kinds(s) == [("count", "delta", 2.0), ("gap", "gap_delta", 8.0), ("count", "delta", 1.0)]
    e = whole(s)
    assert (e.delta, e.gap_delta, e.covered_s) == (3.0, 8.0, 120.0)
    assert e.coverage == pytest.approx(120.0 / 86400.0)


def test_exactly_max_gap_is_still_covered():
    s = series((0, 10.0), (MAX_GAP.total_seconds(), 12.0))
    assert kinds(s) == [("count", "delta", 2.0)]


def test_a_step_above_rated_power_counts_nowhere():
    # a level shift of 1000 kWh in a minute on a 10 kW meter: rule 2 cannot see it (it stays up)
    s = series((0, 10.0), (60, 1010.0), (120, 1011.0))
    assert kinds(s, rated_kw=10.0) == [("step_spike", "none", 0.0), ("count", "delta", 1.0)]
    assert whole(s, rated_kw=10.0).covered_s == 60.0
    assert whole(s).delta == 1001.0  # without a rated power it is indistinguishable from energy


def test_register_resolution_is_not_a_step_spike():
    # a 0.01 kWh register step within one second on a 5 kW meter (5 kW × 1 s = 0.0014 kWh)
    s = series((0, 10.0), (1, 10.01))
    assert kinds(s, rated_kw=5.0) == [("count", "delta", 0.01)]


def test_a_small_backward_step_is_not_a_reset():
    # register jitter: counting 999.99 as "energy since a restart" would invent ~1000 kWh
    s = series((0, 1000.0), (60, 999.99), (120, 999.99), (180, 1000.02))
    assert [k[:2] for k in kinds(s)] == [("backward", "none"), ("count", "delta"), ("count", "delta")]
    e = whole(s)
    assert e.gap_delta == 0.0 and e.delta == pytest.approx(0.03) and e.covered_s == 120.0


def test_a_reset_to_a_negative_reading_counts_nothing():
    s = series((0, 100.0), (60, -3.0), (120, -2.0))
    assert kinds(s)[0] == ("reset", "gap_delta", 0.0)


def test_more_than_max_run_dropped_readings_in_a_row_break_the_pairing():
    assert MAX_RUN == 4
    # a zig-zag: every reading between the ends is a spike or a dip by rule 2
    four = series((0, 10.0), (1, 50.0), (2, 20.0), (3, 60.0), (4, 30.0), (5, 70.0), (6, 71.0))
    assert kinds(four) == [("count", "delta", 60.0), ("count", "delta", 1.0)]
    six = series((0, 10.0), (1, 50.0), (2, 20.0), (3, 60.0), (4, 30.0), (5, 70.0), (6, 40.0),
                 (7, 80.0), (8, 81.0))
    assert kinds(six) == [("break", "none", 0.0), ("count", "delta", 1.0)]
    assert whole(six).covered_s == 1.0


def test_order_of_arrival_does_not_matter_and_duplicate_times_are_refused():
    s = series((0, 1.0), (30, 2.0), (60, 900.0), (90, 3.0), (120, 4.0))
    assert increments(s) == increments(list(reversed(s)))
    with pytest.raises(ValueError, match="two samples"):
        increments([*s, CounterSample(T0, 5.0)])


def test_non_finite_values_are_not_samples():
    s = series((0, 1.0), (30, float("nan")), (60, 2.0), (90, float("inf")), (120, 3.0))
    e = whole(s)
    assert (e.delta, e.covered_s) == (2.0, 120.0)
    m0 = T0.replace(second=0)
    assert set(bucket_energy(s, timedelta(minutes=1))) == {m0 + timedelta(minutes=i) for i in range(3)}


def test_a_pair_straddling_a_bucket_edge_counts_in_the_later_bucket():
    s = series((50, 10.0), (70, 11.0))  # T0 is hh:31:07, so the pair crosses hh:32:00
    b = bucket_energy(s, timedelta(minutes=1))
    m0 = T0.replace(second=0)
    assert b == {m0: (0.0, 0.0, 0.0), m0 + timedelta(minutes=1): (1.0, 20.0, 0.0)}


def test_coverage_of_an_empty_window_is_complete_and_clipped_otherwise():
    assert IntervalEnergy(0.0, 0.0, 0.0, 0.0).coverage == 1.0
    assert IntervalEnergy(1.0, 90.0, 0.0, 60.0).coverage == 1.0
    assert IntervalEnergy(1.0, 30.0, 0.0, 60.0).coverage == 0.5
