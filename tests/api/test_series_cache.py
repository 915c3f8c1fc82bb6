"""The series cache answers exactly what the rollups answer: after it is filled, after late data
lands in a cached bucket, across a gap, and when the set of meters changes."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import sqlalchemy as sa

from lingtan.core.counters import counter_series_many
from lingtan.core.series_cache import cached_series, spec_key
from lingtan.kernel.db import get_engine, libpq_url
from tests.test_energy_sql import M0, Row, add_meters, empty, write

H0 = M0.replace(minute=0)
KWH = "active_energy_import"


def counters(meter: str, hours: int, gap: tuple[int, int] | None = None, start_kwh: float = 1000.0
             ) -> list[Row]:
    """A reading a minute, 60 kWh an hour, with an optional outage [gap) in minutes."""
    rows: list[Row] = []
    for k in range(hours * 60):
        if gap and gap[0] <= k < gap[1]:
            continue
        rows.append((H0 + timedelta(minutes=k, seconds=3), meter, KWH, start_kwh + k * 1.0, 0))
    return rows


def cached_rows(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute("SELECT count(*) FROM series_cache").fetchone()[0]  # type: ignore[index]


def test_cache_equals_the_rollups_through_late_data_gaps_and_meter_changes(db: str) -> None:
    empty(db)
    add_meters(db, {"g1": {}, "g2": {}})
    write(db, counters("g1", 6, gap=(130, 190)) + counters("g2", 6, start_kwh=50.0))
    specs = [(["g1"], KWH), (["g1", "g2"], KWH)]
    a, now = H0, H0 + timedelta(hours=5, minutes=30)   # five complete hours and a partial one
    engine = get_engine(db)

    def both() -> tuple[list, list]:
        with engine.connect() as conn:
            return (cached_series(conn, "s", specs, a, now, "1h", now),
                    counter_series_many(conn, specs, a, now, "1h"))

    first, truth = both()
    assert first == truth and len(truth) == 6
    assert cached_rows(db) == 5   # complete hours only, the current one is read live
    again, truth = both()
    assert again == truth         # now read from the cache

    # the outage's readings arrive late, into cached hours: the refresh drops those hours (the
    # energy counted across the gap is now placed in them), the next call recomputes them
    late = [r for r in counters("g1", 6) if H0 + timedelta(minutes=130) <= r[0] < H0 + timedelta(minutes=190)]
    write(db, late)
    after, truth = both()
    assert after == truth and after != again
    assert cached_rows(db) == 5

    # another set of meters is another spec; the old one of this site is dropped when it fills
    other = [(["g2"], KWH)]
    with engine.connect() as conn:
        assert cached_series(conn, "s", other, a, now, "1h", now) == counter_series_many(
            conn, other, a, now, "1h")
        keys = {r[0] for r in conn.execute(sa.text("SELECT DISTINCT spec FROM series_cache"))}
    assert keys == {spec_key("1h", other)}


def test_a_window_inside_one_bucket_reads_live(db: str) -> None:
    empty(db)
    add_meters(db, {"g1": {}})
    write(db, counters("g1", 2))
    now = H0 + timedelta(minutes=50)
    with get_engine(db).connect() as conn:
        got = cached_series(conn, "s", [(["g1"], KWH)], H0, now, "1h", now)
        assert got == counter_series_many(conn, [(["g1"], KWH)], H0, now, "1h")
    assert cached_rows(db) == 0
