from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from gateway.sinks.postgres import PostgresSink, register_devices
from lingtan.core.rollup_worker import RollupRefresher
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Quality, Reading

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def fetch(url: str, sql: str, *args):
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, args).fetchall()


def test_writes_are_idempotent(db):
    sink = PostgresSink(db)
    rows = [Reading(T0 + timedelta(seconds=i), "m1", "active_power", float(i)) for i in range(100)]
    assert sink.write(rows) == 100
    assert sink.write(rows) == 0  # a replay after a crash adds nothing
    assert sink.write([*rows[50:], Reading(T0 + timedelta(seconds=100), "m1", "active_power", 1.0)]) == 1
    assert fetch(db, "SELECT count(*), sum(value) FROM readings") == [(101, 4951.0)]
    sink.close()


def test_rollups_follow_the_raw_rows_including_late_data(db):
    sink = PostgresSink(db)
    refresher = RollupRefresher(db)
    # two minutes of 1 Hz data, values 0..119
    sink.write([Reading(T0 + timedelta(seconds=i), "m1", "active_power", float(i)) for i in range(120)])
    # the write marks the two minutes; nothing is aggregated until the refresher runs
    assert fetch(db, "SELECT count(*) FROM rollup_dirty") == [(2,)]
    assert fetch(db, "SELECT count(*) FROM readings_1m") == [(0,)]
    assert refresher.refresh_all() == 2
    assert fetch(db, "SELECT count(*) FROM rollup_dirty") == [(0,)]
    got = fetch(db, "SELECT bucket, count, min, max, avg, first, last FROM readings_1m ORDER BY bucket")
    assert got == [(T0, 60, 0.0, 59.0, 29.5, 0.0, 59.0),
                   (T0 + timedelta(minutes=1), 60, 60.0, 119.0, 89.5, 60.0, 119.0)]
    assert fetch(db, "SELECT count, avg, first, last FROM readings_15m") == [(120, 59.5, 0.0, 119.0)]
    # a late reading in the first minute re-materialises that minute and the levels above
    sink.write([Reading(T0 + timedelta(milliseconds=500), "m1", "active_power", 1000.0)])
    refresher.refresh_all()
    assert fetch(db, "SELECT count, max FROM readings_1m WHERE bucket = %s", T0) == [(61, 1000.0)]
    assert fetch(db, "SELECT count, max FROM readings_1h") == [(121, 1000.0)]
    # day buckets start at midnight China time (16:00 UTC)
    assert fetch(db, "SELECT bucket FROM readings_1d") == [(datetime(2026, 11, 19, 16, tzinfo=UTC),)]
    sink.close()
    refresher.close()


def test_a_replayed_batch_with_new_rows_takes_the_conflict_path_atomically(db):
    sink = PostgresSink(db)
    first = [Reading(T0 + timedelta(seconds=i), "m1", "active_power", 1.0) for i in range(10)]
    sink.write(first)
    # half old, half new: the fast COPY hits the unique key, the fallback keeps only new rows
    mixed = first[5:] + [Reading(T0 + timedelta(seconds=10 + i), "m1", "active_power", 2.0)
                         for i in range(5)]
    assert sink.write(mixed) == 5
    assert fetch(db, "SELECT count(*), sum(value) FROM readings") == [(15, 20.0)]
    # the marks of the failed fast path were rolled back with it and written once by the fallback
    assert fetch(db, "SELECT count(*) FROM rollup_dirty") == [(1,)]
    sink.close()


def test_register_devices_creates_site_and_meters_and_moves_only_the_carrier(db):
    register_devices(db, "gw-1", "plant", "Plant", [("m1", "Meter 1", "grid_import", "modbus-tcp")])
    register_devices(db, "gw-2", "plant", "Plant 2", [("m1", "Meter one", "load", "modbus-tcp")])
    assert fetch(db, "SELECT id, name FROM sites") == [("plant", "Plant")]
    # name and role stay as first described (the site model owns them: test_meter_ownership.py)
    assert fetch(db, "SELECT id, name, role, gateway_id FROM meters") == [
        ("m1", "Meter 1", "grid_import", "gw-2")]


def latest_rows(url: str):
    return fetch(url, "SELECT meter_id, quantity, time, value, quality FROM latest_readings"
                      " ORDER BY meter_id, quantity")


def test_the_sink_keeps_each_series_newest_reading_and_late_data_never_replaces_it(db):
    sink = PostgresSink(db)
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    # out of time order, two series in one batch: the newest of each wins, wherever it sits
    sink.write([Reading(at(5), "m1", "active_power", 5.0), Reading(at(9), "m1", "active_power", 9.0),
                Reading(at(7), "m1", "active_power", 7.0), Reading(at(3), "m2", "voltage", 230.0)])
    newest = [("m1", "active_power", at(9), 9.0, 0), ("m2", "voltage", at(3), 230.0, 0)]
    assert latest_rows(db) == newest
    # late data (a gateway replaying its buffer) is stored, but an older row never replaces a newer
    assert sink.write([Reading(at(8), "m1", "active_power", 8.0), Reading(at(1), "m2", "voltage", 1.0)]) == 2
    assert latest_rows(db) == newest
    # a replayed row with another value for a stored time: `readings` keeps the first, and so does
    # the last value
    assert sink.write([Reading(at(9), "m1", "active_power", 99.0)]) == 0
    assert latest_rows(db) == newest
    # the conflict path (a stored row in the batch): only the series with a newer row moves
    assert sink.write([Reading(at(9), "m1", "active_power", 9.0),
                       Reading(at(10), "m2", "voltage", 229.0, Quality.ESTIMATED)]) == 1
    assert latest_rows(db) == [newest[0], ("m2", "voltage", at(10), 229.0, int(Quality.ESTIMATED))]
    # and it is the row `readings` holds for that time
    assert fetch(db, "SELECT time, value FROM readings WHERE meter_id = 'm1' ORDER BY time DESC LIMIT 1") \
        == [(at(9), 9.0)]
    sink.close()


def test_a_failed_batch_leaves_the_last_values_as_they_were(db):
    sink = PostgresSink(db)
    sink.write([Reading(T0, "m1", "active_power", 1.0)])
    # the batch dies after its readings and last values are written (its rollup marks fail), so
    # the whole transaction rolls back: a last value never points at a reading that is not stored
    with psycopg.connect(libpq_url(db), autocommit=True) as conn:
        conn.execute("ALTER TABLE rollup_dirty RENAME TO rollup_dirty_away")
    try:
        with pytest.raises(psycopg.errors.UndefinedTable):
            sink.write([Reading(T0 + timedelta(seconds=1), "m1", "active_power", 2.0)])
    finally:
        with psycopg.connect(libpq_url(db), autocommit=True) as conn:
            conn.execute("ALTER TABLE rollup_dirty_away RENAME TO rollup_dirty")
    assert latest_rows(db) == [("m1", "active_power", T0, 1.0, 0)]
    assert fetch(db, "SELECT count(*) FROM readings") == [(1,)]
    sink.close()
