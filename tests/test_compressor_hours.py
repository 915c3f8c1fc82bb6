"""The compressor-hour rollup: what the refresher and the 0005 backfill store, and the window
figures read from it, equal the same figures computed minute by minute from the raw readings."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from lingtan.core.amounts import compressor_air
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.migrate import alembic_config, upgrade
from tests.test_energy_sql import M0, Row, add_meters, empty, write

H0 = M0.replace(minute=0)  # an hour on the rollup grid

METER = "comp-1"
LOADED, UNLOADED = 2.0, 1.0


def readings(seed: int, hours: int) -> list[Row]:
    """Flow, power and state of one compressor: a load cycle with minutes that change state
    mid-minute, minutes without power or state readings, and a 20-minute outage."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for k in range(hours * 60):
        if 100 <= k < 120:
            continue
        t = H0 + timedelta(minutes=k)
        loaded = (k % 10) < 7
        flow = 10.0 + rng.random() if loaded else 0.5 * rng.random()
        rows.append((t + timedelta(seconds=5), METER, "air_flow", flow, 0))
        if rng.random() < 0.9:
            rows.append((t + timedelta(seconds=5), METER, "active_power",
                         (75.0 if loaded else 25.0) + rng.random(), 0))
        if rng.random() < 0.9:
            rows.append((t + timedelta(seconds=5), METER, "state", LOADED if loaded else UNLOADED, 0))
        if rng.random() < 0.1:  # a second state reading in the minute, sometimes different
            rows.append((t + timedelta(seconds=40), METER, "state", rng.choice([LOADED, UNLOADED]), 0))
    return rows


def minute_figures(rows: list[Row]) -> dict[datetime, tuple[float, float | None, bool]]:
    """Per minute with air flow: mean flow, mean power, loaded throughout (as docs/domain.md defines it)."""
    by: dict[tuple[datetime, str], list[float]] = defaultdict(list)
    for t, _, q, v, _ in rows:
        by[(t.replace(second=0), q)].append(v)
    out = {}
    for (minute, q), flows in by.items():
        if q != "air_flow":
            continue
        power, state = by.get((minute, "active_power")), by.get((minute, "state"))
        out[minute] = (sum(flows) / len(flows), sum(power) / len(power) if power else None,
                       bool(state) and all(s == LOADED for s in state))
    return out


def expected(minutes: dict[datetime, tuple[float, float | None, bool]], a: datetime, b: datetime
             ) -> tuple[float | None, float | None, float | None]:
    inside = [v for m, v in minutes.items() if a <= m < b]
    loaded = [v for v in inside if v[2]]
    kw = [v[1] for v in loaded if v[1] is not None]
    return (sum(v[0] for v in inside) if inside else None, sum(kw) / len(kw) if kw else None,
            sum(v[0] for v in loaded) / len(loaded) if loaded else None)


def stored_hours(url: str) -> dict[datetime, tuple]:
    with psycopg.connect(libpq_url(url)) as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(
            "SELECT bucket, flow_minutes, air_m3, loaded_minutes, loaded_flow_sum, loaded_kw_minutes,"
            " loaded_kw_sum FROM compressor_1h WHERE meter_id = %s ORDER BY bucket", (METER,))}


def expected_hours(minutes: dict[datetime, tuple[float, float | None, bool]]) -> dict[datetime, tuple]:
    hours: dict[datetime, list] = defaultdict(list)
    for m, v in minutes.items():
        hours[m.replace(minute=0)].append(v)
    out = {}
    for h, vs in hours.items():
        loaded = [v for v in vs if v[2]]
        kw = [v[1] for v in loaded if v[1] is not None]
        out[h] = (len(vs), sum(v[0] for v in vs), len(loaded),
                  sum(v[0] for v in loaded) if loaded else None, len(kw), sum(kw) if kw else None)
    return out


def assert_hours(got: dict[datetime, tuple], want: dict[datetime, tuple]) -> None:
    assert set(got) == set(want)
    for h in want:
        for x, y in zip(got[h], want[h], strict=True):
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12), (h, got[h], want[h])


def assert_window(conn: sa.Connection, minutes: dict, a: datetime, b: datetime) -> None:
    got = compressor_air(conn, [METER], a, b).get(METER, (None, None, None))
    want = expected(minutes, a, b)
    for x, y in zip(got, want, strict=True):
        assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12), (a, b, got, want)


def test_refresher_keeps_hours_equal_to_the_minutes_and_windows_add_them_up(db):
    empty(db)
    add_meters(db, {METER: {}})
    rows = readings(7, hours=5)
    for i in range(0, len(rows), 97):  # batches as a gateway sends them
        write(db, rows[i:i + 97])
    late = [(H0 + timedelta(minutes=63, seconds=50), METER, "state", UNLOADED, 0),
            (H0 + timedelta(minutes=181, seconds=50), METER, "active_power", 500.0, 0)]
    write(db, late)  # minutes 63 and 181 stop counting as loaded / get another power value
    rows += late
    minutes = minute_figures(rows)
    assert_hours(stored_hours(db), expected_hours(minutes))
    with get_engine(db).connect() as conn:
        for a, b in [(H0, H0 + timedelta(hours=5)),                                   # whole hours
                     (H0 + timedelta(minutes=17, seconds=30), H0 + timedelta(hours=4, minutes=3)),
                     (H0 + timedelta(minutes=61), H0 + timedelta(minutes=119)),      # inside one hour
                     (H0 + timedelta(minutes=100), H0 + timedelta(minutes=120)),     # the outage
                     (H0 - timedelta(hours=2), H0 + timedelta(hours=9))]:
            assert_window(conn, minutes, a, b)


def test_migration_0005_fills_hours_from_existing_rollups(db):
    empty(db)
    add_meters(db, {METER: {}})
    rows = readings(11, hours=3)
    write(db, rows)
    want = stored_hours(db)
    assert_hours(want, expected_hours(minute_figures(rows)))
    get_engine(db).dispose()
    command.downgrade(alembic_config(db), "0004")
    try:
        upgrade(db)
        assert_hours(stored_hours(db), expected_hours(minute_figures(rows)))
    finally:
        upgrade(db)
