"""Counter energy in the rollups (lingtan/core/rollups.py) and through lingtan.core.counters agrees with
the reference in lingtan/core/energy.py, including late data arriving after a refresh."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lingtan.core import rollups
from lingtan.core.counters import counter_energy, counter_series, tiles
from lingtan.core.energy import CounterSample, Exchange, bucket_energy, interval_energy
from lingtan.kernel import timegrid
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.reading import Quality
from tests.test_energy import T0, Scenario, scenarios

KWH = "active_energy_import"
M0 = T0.replace(second=0)  # a minute on the rollup grid
Row = tuple[datetime, str, str, float, int]


def empty(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("TRUNCATE readings, readings_1m, readings_15m, readings_1h, readings_1d,"
                     " compressor_1h, series_cache, rollup_dirty, meters, sites CASCADE")


def add_meters(url: str, params: dict[str, dict[str, float]]) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('s', 'S') ON CONFLICT DO NOTHING")
        for meter, p in params.items():
            conn.execute("INSERT INTO meters (id, site_id, name, params) VALUES (%s, 's', %s, %s)",
                         (meter, meter, json.dumps(p)))


def write(url: str, rows: Sequence[Row]) -> None:
    """Store rows and mark them as the sink does, then refresh until no marks are left."""
    with psycopg.connect(libpq_url(url)) as conn:
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                "COPY readings (time, meter_id, quantity, value, quality) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with conn.transaction():
            rollups.mark_dirty(conn, rollups.touched(rows))
        while rollups.refresh_dirty(conn):
            pass


def stored(url: str, table: str, meter: str, quantity: str
           ) -> dict[datetime, tuple[float | None, float | None, float | None]]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(f"SELECT bucket, delta, covered, gap_delta FROM {table}"
                            " WHERE meter_id = %s AND quantity = %s ORDER BY bucket",
                            (meter, quantity)).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def close(a: tuple, b: tuple, scale: float) -> bool:
    return all(x is not None and abs(x - y) <= 1e-9 * scale for x, y in zip(a, b, strict=True))


def assert_rollups_agree(url: str, meter: str, quantity: str, samples: list[CounterSample],
                         wrap: float | None, rated_kw: float | None,
                         exchanges: Sequence[Exchange] = ()) -> None:
    scale = max([1.0, *(abs(s.value) for s in samples), wrap or 0.0]) * max(1, len(samples))
    for table, width, _ in rollups.LEVELS:
        want = bucket_energy(samples, width, wrap=wrap, rated_kw=rated_kw, exchanges=exchanges)
        got = stored(url, table, meter, quantity)
        assert set(got) == set(want), table
        bad = {b: (got[b], want[b]) for b in want if not close(got[b], want[b], scale)}
        assert not bad, (table, bad)


def ceil_minute(t: datetime) -> datetime:
    return ceil_to(t, rollups.MINUTE)


def assert_service_agrees(url: str, meters: dict[str, tuple[list[CounterSample], float | None,
                                                              float | None]],
                          quantity: str, start: datetime, end: datetime) -> None:
    """counter_energy and counter_series against the reference, summed over ``meters``."""
    a, b = ceil_minute(start), ceil_minute(end)
    refs = [interval_energy(s, a, b, wrap=w, rated_kw=r) for s, w, r in meters.values()]
    scale = 1.0 + sum(abs(x.value) * len(s) for s, _, _ in meters.values() for x in s)
    with get_engine(url).connect() as conn:
        got = counter_energy(conn, list(meters), quantity, start, end)
        assert got.meters == len(meters)
        assert got.window_s == max(0.0, (b - a).total_seconds())
        assert got.value == pytest.approx(sum(r.delta for r in refs), abs=1e-9 * scale)
        assert got.gap_value == pytest.approx(sum(r.gap_delta for r in refs), abs=1e-9 * scale)
        assert got.covered_s == pytest.approx(sum(r.covered_s for r in refs), abs=1e-6)
        if got.window_s > 0:
            want = min(1.0, sum(r.covered_s for r in refs) / (got.window_s * len(meters)))
            assert got.coverage == pytest.approx(want)
        for resolution, table in rollups.RESOLUTIONS.items():
            width = next(w for t, w, _ in rollups.LEVELS if t == table)
            want_series: dict[datetime, list[float]] = {}
            for s, w, r in meters.values():
                for bucket, v in bucket_energy(s, width, wrap=w, rated_kw=r).items():
                    if start <= bucket < end:
                        acc = want_series.setdefault(bucket, [0.0, 0.0, 0.0])
                        for i in range(3):
                            acc[i] += v[i]
            rows = counter_series(conn, list(meters), quantity, start, end, resolution)  # type: ignore[arg-type]
            assert [r[0] for r in rows] == sorted(want_series), resolution
            for bucket, delta, covered, gap in rows:
                assert close((delta, covered, gap), tuple(want_series[bucket]), scale), (resolution, bucket)


def rows_of(meter: str, quantity: str, samples: Sequence[CounterSample], quality: int = 0) -> list[Row]:
    return [(s.time, meter, quantity, s.value, quality) for s in samples]


# ---------------------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios(max_samples=80), scenarios(max_samples=40), st.data())
def test_rollups_and_the_service_agree_with_the_reference_also_after_late_data(
        db: str, a: Scenario, b: Scenario, data: st.DataObject):
    empty(db)
    meters = {"a": a, "b": b}
    add_meters(db, {m: {"rated_power_kw": s.rated_kw, **({"counter_wrap": s.wrap} if s.wrap else {})}
                    for m, s in meters.items()})
    # some readings arrive late, after the others were stored and rolled up
    late = {m: data.draw(st.lists(st.booleans(), min_size=len(s.samples), max_size=len(s.samples)))
            for m, s in meters.items()}
    for batch in (False, True):
        write(db, [row for m, s in meters.items()
                   for row, is_late in zip(rows_of(m, KWH, s.samples), late[m], strict=True)
                   if is_late == batch])
    for m, s in meters.items():
        assert_rollups_agree(db, m, KWH, s.samples, s.wrap, s.rated_kw)
    everything = {m: (s.samples, s.wrap, s.rated_kw) for m, s in meters.items()}
    last = max(x.time for s in meters.values() for x in s.samples)
    assert_service_agrees(db, everything, KWH, T0 - timedelta(hours=1), last + timedelta(hours=1))
    a_ms, b_ms = sorted(data.draw(st.lists(st.integers(-3_600_000, 40 * 3_600_000), min_size=2,
                                           max_size=2)))
    assert_service_agrees(db, everything, KWH, T0 + timedelta(milliseconds=a_ms),
                          T0 + timedelta(milliseconds=b_ms))


def test_a_reading_that_arrives_later_turns_the_previous_minutes_last_reading_into_a_spike(db: str):
    add_meters(db, {"m": {}})
    write(db, [(M0 + timedelta(seconds=30), "m", KWH, 100.0, 0),
               (M0 + timedelta(seconds=59), "m", KWH, 5000.0, 0)])
    # the newest reading has no successor yet: nothing tells it is a spike
    assert stored(db, "readings_1m", "m", KWH) == {M0: (4900.0, 29.0, 0.0)}
    write(db, [(M0 + timedelta(minutes=2, seconds=10), "m", KWH, 101.0, 0)])
    # its successor agrees with the reading before it: 5000 is a spike, the pair spans it
    assert stored(db, "readings_1m", "m", KWH) == {M0: (0.0, 0.0, 0.0),
                                                   M0 + timedelta(minutes=2): (1.0, 100.0, 0.0)}
    assert stored(db, "readings_1h", "m", KWH) == {M0.replace(minute=0): (1.0, 100.0, 0.0)}


def test_a_late_reading_between_sparse_ones_splits_the_next_minutes_pair(db: str):
    add_meters(db, {"m": {}})
    write(db, [(M0 + timedelta(seconds=10), "m", KWH, 100.0, 0),
               (M0 + timedelta(seconds=130), "m", KWH, 101.0, 0)])
    assert stored(db, "readings_1m", "m", KWH)[M0 + timedelta(minutes=2)] == (1.0, 120.0, 0.0)
    write(db, [(M0 + timedelta(seconds=90), "m", KWH, 100.5, 0)])  # marks only its own minute
    assert stored(db, "readings_1m", "m", KWH) == {M0: (0.0, 0.0, 0.0),
                                                   M0 + timedelta(minutes=1): (0.5, 80.0, 0.0),
                                                   M0 + timedelta(minutes=2): (0.5, 40.0, 0.0)}


def test_late_readings_far_from_the_rest_re_materialise_every_minute_they_affect(db: str):
    # polled every 5 minutes; spikes and dips whose neighbours sit several minutes away
    values = [10.0, 11.0, 9000.0, 12.0, 13.0, 0.0, 14.0, 15.0, 16.0, 17.0]
    samples = [CounterSample(M0 + timedelta(minutes=5 * i, seconds=3), v) for i, v in enumerate(values)]
    add_meters(db, {"m": {}})
    for order in ([0, 2, 4, 6, 8], [9, 1, 5], [3, 7]):
        write(db, rows_of("m", KWH, [samples[i] for i in order]))
    assert_rollups_agree(db, "m", KWH, samples, None, None)
    assert sum(v[0] for v in stored(db, "readings_1m", "m", KWH).values()) == 7.0


def test_stale_and_out_of_range_readings_are_not_samples(db: str):
    add_meters(db, {"m": {}})
    good = [CounterSample(M0 + timedelta(minutes=i), v) for i, v in ((0, 100.0), (1, 101.0), (21, 130.0))]
    # the meter froze: it kept publishing 101 for 20 minutes, and once sent garbage
    frozen = [CounterSample(M0 + timedelta(minutes=i), 101.0) for i in range(2, 21)]
    garbage = [CounterSample(M0 + timedelta(minutes=21, seconds=30), 1e12)]
    write(db, rows_of("m", KWH, good) + rows_of("m", KWH, frozen, int(Quality.STALE))
          + rows_of("m", KWH, garbage, int(Quality.OUT_OF_RANGE)))
    got = stored(db, "readings_1m", "m", KWH)
    want = bucket_energy(good, rollups.MINUTE)
    assert {b: got[b] for b in want} == want
    assert want[M0 + timedelta(minutes=21)] == (0.0, 0.0, 29.0)  # 20 minutes: timing unknown
    # minutes with only flagged readings keep their aggregates and count no energy
    assert all(got[b] == (0.0, 0.0, 0.0) for b in set(got) - set(want))
    with psycopg.connect(libpq_url(db)) as conn:
        assert conn.execute("SELECT sum(count), max(max) FROM readings_1h").fetchone() == (23, 1e12)


def test_wrap_and_rated_power_come_from_the_meter_and_rated_power_only_for_kwh(db: str):
    add_meters(db, {"m": {"counter_wrap": 1000.0, "rated_power_kw": 100.0}})
    s = [CounterSample(M0 + timedelta(minutes=i), v)
         for i, v in enumerate([998.0, 999.5, 0.7, 500.7, 501.0])]
    write(db, rows_of("m", KWH, s) + rows_of("m", "gas_volume", s))
    assert_rollups_agree(db, "m", KWH, s, 1000.0, 100.0)
    assert_rollups_agree(db, "m", "gas_volume", s, 1000.0, None)
    with get_engine(db).connect() as conn:
        # kWh: rollover counted (1.5 + 1.2), the 500 kWh jump in a minute on a 100 kW meter is not
        kwh = counter_energy(conn, ["m"], KWH, M0, M0 + timedelta(minutes=5))
        assert (kwh.value, kwh.covered_s) == (pytest.approx(3.0), 180.0)
        gas = counter_energy(conn, ["m"], "gas_volume", M0, M0 + timedelta(minutes=5))
        assert gas.value == pytest.approx(503.0) and gas.coverage == pytest.approx(240.0 / 300.0)


def test_a_recorded_meter_exchange_counts_across_the_swap_and_keeps_it_covered(db: str):
    # The old meter reads 5000.0 at minute 3 and is swapped 30 s later for a new one starting at
    # 0.0, which reads 2.0 at minute 4: across the swap (5000.5 − 5000.0) + (2.0 − 0.0) = 2.5 kWh,
    # counted and covered. Without the record, 2.0 is a reset: energy with unknown timing.
    s = [CounterSample(M0 + timedelta(minutes=i), v)
         for i, v in enumerate([4998.0, 4999.0, 4999.5, 5000.0, 2.0, 3.0])]
    swap = Exchange(M0 + timedelta(minutes=3, seconds=30), 5000.5, 0.0)
    record = {"time": swap.time.isoformat(), "quantity": KWH, "old_final": 5000.5, "new_initial": 0.0}
    add_meters(db, {"m": {"exchanges": [record]}, "plain": {}})  # type: ignore[dict-item]
    write(db, rows_of("m", KWH, s) + rows_of("plain", KWH, s))
    assert_rollups_agree(db, "m", KWH, s, None, None, [swap])
    assert_rollups_agree(db, "plain", KWH, s, None, None)
    with get_engine(db).connect() as conn:
        swapped = counter_energy(conn, ["m"], KWH, M0, M0 + timedelta(minutes=6))
        reset = counter_energy(conn, ["plain"], KWH, M0, M0 + timedelta(minutes=6))
    # 1.0 + 0.5 + 0.5 + 2.5 + 1.0 = 5.5 kWh over the 5 minutes between the first and last reading
    assert (swapped.value, swapped.gap_value, swapped.covered_s) == (5.5, 0.0, 300.0)
    assert (reset.value, reset.gap_value, reset.covered_s) == (3.0, 2.0, 240.0)


def test_an_exchange_recorded_after_the_readings_re_materialises_the_pair_around_it(db: str):
    from lingtan.core.site_file import MeterPatch
    from lingtan.core.site_model import update_meter
    from lingtan.core.site_schema import MeterParams

    s = [CounterSample(M0 + timedelta(minutes=i), v) for i, v in enumerate([100.0, 101.0, 4.0, 5.0])]
    add_meters(db, {"m": {}})
    write(db, rows_of("m", KWH, s))
    before = stored(db, "readings_1m", "m", KWH)[M0 + timedelta(minutes=2)]
    assert before == (0.0, 0.0, 4.0)  # a reset: the new meter's 4 kWh, timing unknown
    swap = {"time": (M0 + timedelta(minutes=1, seconds=20)).isoformat(), "quantity": KWH,
            "old_final": 101.5, "new_initial": 0.0}
    with get_engine(db).begin() as conn:
        update_meter(conn, "m", MeterPatch(params=MeterParams.model_validate({"exchanges": [swap]})))
    with psycopg.connect(libpq_url(db)) as conn:
        while rollups.refresh_dirty(conn):
            pass
    # (101.5 − 101.0) + (4.0 − 0.0) = 4.5 kWh, counted and covered (60 s)
    assert stored(db, "readings_1m", "m", KWH)[M0 + timedelta(minutes=2)] == (4.5, 60.0, 0.0)
    assert stored(db, "readings_1h", "m", KWH)[M0.replace(minute=0)] == (6.5, 180.0, 0.0)


def test_live_quantities_have_no_energy(db: str):
    write(db, [(M0 + timedelta(seconds=i), "m", "active_power", float(i), 0) for i in range(90)])
    for table, _, _ in rollups.LEVELS:
        assert set(stored(db, table, "m", "active_power").values()) == {(None, None, None)}
    with get_engine(db).connect() as conn, pytest.raises(ValueError, match="not a counter"):
        counter_energy(conn, ["m"], "active_power", M0, M0 + timedelta(hours=1))


def test_no_meters_is_zero_energy_fully_covered_and_no_data_is_zero_coverage(db: str):
    with get_engine(db).connect() as conn:
        none = counter_energy(conn, [], KWH, M0, M0 + timedelta(days=30))
        assert (none.value, none.gap_value, none.coverage, none.meters) == (0.0, 0.0, 1.0, 0)
        assert counter_series(conn, [], KWH, M0, M0 + timedelta(days=1), "1h") == []
        silent = counter_energy(conn, ["quiet"], KWH, M0, M0 + timedelta(days=30))
        assert (silent.value, silent.coverage, silent.meters) == (0.0, 0.0, 1)


def test_a_month_over_many_meters_is_read_from_day_rollups_in_one_statement(db: str):
    # 12 meters × one reading every 15 minutes for 31 days, written as a replayed backlog is
    start = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 1 Nov 00:00 UTC+8
    rng = random.Random(4)
    series: dict[str, list[CounterSample]] = {}
    for m in range(12):
        value, points = rng.uniform(0, 1e5), []
        for i in range(31 * 96):
            value += rng.uniform(0, 10)
            points.append(CounterSample(start + timedelta(minutes=15 * i, seconds=m), value))
        series[f"m{m:02d}"] = points
    write(db, [r for m, s in series.items() for r in rows_of(m, KWH, s)])
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = get_engine(db)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        a, b = start + timedelta(hours=7, minutes=3, seconds=20), start + timedelta(days=30, minutes=7)
        assert_service_agrees(db, {m: (s, None, None) for m, s in series.items()}, KWH, a, b)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    energy_statements = [s for s in statements if "UNION ALL" in s]
    assert len(energy_statements) == 1 and "readings_1d" in energy_statements[0]


def test_windows_are_tiled_by_the_coarsest_aligned_rollups_without_overlap():
    rng = random.Random(7)
    for _ in range(300):
        start = M0 + timedelta(seconds=rng.uniform(-5 * 86400, 5 * 86400))
        end = start + timedelta(seconds=rng.choice([0, 30, 3600, 86400, 40 * 86400]) * rng.random())
        parts = tiles(start, end)
        a, b = ceil_minute(start), ceil_minute(end)
        covered = sorted((lo, hi) for _, lo, hi in parts)
        assert all(x[1] == y[0] for x, y in itertools.pairwise(covered))  # contiguous
        assert (covered[0][0], covered[-1][1]) == (a, b) if a < b else covered == []
        widths = {t: w for t, w, _ in rollups.LEVELS}
        for table, lo, hi in parts:
            w = widths[table]
            assert timegrid.floor_time(lo, w) == lo and timegrid.floor_time(hi, w) == hi
        # no part could have used a coarser level: no whole aligned coarser bucket fits in it
        for table, lo, hi in parts:
            for coarser in (w for w in widths.values() if w > widths[table]):
                assert ceil_to(lo, coarser) + coarser > hi


def ceil_to(t: datetime, width: timedelta) -> datetime:
    f = timegrid.floor_time(t, width)
    return f if f == t else f + width
