"""A field gateway writing straight to PostgreSQL stores readings, last values and rollup marks,
and nothing else: the rollup tables and the API's series cache are central work, done by the
refresher of `lingtan api`, `lingtan ingest` or `lingtan rollups` (lingtan/core/rollup_worker.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from gateway.config import parse_config
from gateway.runtime import Gateway
from lingtan.core.rollup_worker import RollupWorker
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading
from tests.conftest import free_port

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
CENTRAL = ("readings_1m", "readings_15m", "readings_1h", "readings_1d", "compressor_1h")


def count(url: str, table: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]


def central_rows(url: str) -> dict[str, int]:
    return {t: count(url, t) for t in (*CENTRAL, "series_cache")}


def test_the_gateway_marks_buckets_and_only_the_central_worker_fills_them(db: str, tmp_path: Path) -> None:
    with psycopg.connect(libpq_url(db)) as conn:  # a cached sum of the quarter hour the readings fall in
        conn.execute("INSERT INTO series_cache (spec, resolution, bucket, site_id, sums)"
                     " VALUES ('spec', '15m', %s, 'plant', '{1.0}')", (T0,))
    cfg = parse_config(f"""
gateway: {{id: gw-edge, site: plant}}
buffer: {{path: {tmp_path / 'buffer.db'}}}
health: {{listen: null}}
sinks: [{{type: postgres}}]
devices:
  - {{id: incomer, host: 127.0.0.1, port: {free_port()}, profile: acrel-adl400, rated_power_kw: 100}}
""")
    gateway = Gateway(cfg, db)
    readings = [Reading(T0 + timedelta(seconds=10 * i), "incomer", q, v)
                for i in range(30)
                for q, v in (("active_energy_import", 100 + i / 100), ("active_power", 3.6))]
    try:
        gateway.start()
        gateway.emit(readings)  # what its collectors would hand it
        deadline = time.monotonic() + 20
        while count(db, "readings") < len(readings) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count(db, "readings") == len(readings)
        assert count(db, "latest_readings") == 2 and count(db, "rollup_dirty") > 0
        time.sleep(3)  # longer than any refresh interval the gateway once had
        assert central_rows(db) == {**dict.fromkeys(CENTRAL, 0), "series_cache": 1}
        assert not [t.name for t in threading.enumerate() if "rollup" in t.name]
    finally:
        gateway.stop()
    # nor does it catch up when it stops
    assert central_rows(db) == {**dict.fromkeys(CENTRAL, 0), "series_cache": 1}

    worker = RollupWorker(db, every=0.2)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while count(db, "rollup_dirty") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    assert count(db, "rollup_dirty") == 0
    rows = central_rows(db)
    assert rows["readings_1m"] == 2 * 5 and rows["readings_1d"] == 2  # 5 minutes of two series
    assert rows["series_cache"] == 0  # the quarter hour it changed is no longer cached
