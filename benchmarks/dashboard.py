"""Dashboard latency: the Overview in Chromium and its refresh callback, on 30 days of demo-plant data.

Run:  .venv/bin/python -m benchmarks.dashboard [--days 30] [--loads 10] [--runs 50] [--dsn URL]

The demo plant (deploy/site-demo-plant.yaml, the meters and quantities of simulators/site.py and
deploy/gateway.yaml) with one reading a minute per series from the China midnight ``--days``
days ago up to now, generated in SQL into a dedicated database (``lingtan_bench_dashboard``)
together with every rollup level and ``compressor_1h``. The database is kept: a later run with
the same parameters reuses it and appends the minutes since it was last written (through
``lingtan.core.rollups.refresh_keys``, as the central refresher would); while the benchmark runs,
a feeder thread keeps appending each new minute, so the data always ends "now".

Measured in the same run:

1. the Overview page load in headless Chromium, navigation start to fully rendered (every tile a
   number, the power chart's traces holding points): the first load after ``lingtan dashboard``
   started (cold), then ``--loads`` warm loads in a new browser context each (empty cache) and
   ``--loads`` in one kept context (cached scripts);
2. the refresh callback: ``dashboard.refresh.refresh`` called in-process with the callback's own
   loader, and ``POST /_dash-update-component`` replayed against the running server, each as a
   tick (the chart state the browser sends after the first load) and as a full reload, with a
   profile of where one call's time goes (each KPI call, SQL against Python).

The targets (overview rendered < 2 s at warm p95, refresh callback < 300 ms at p95) are
reported as PASS or MISS; the exit status is non-zero only when a result is wrong (data that
differs from what the product would have stored, a page that never rendered, an error in a
callback's answer).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from benchmarks.kpi import (
    Meter,
    Series,
    Timing,
    _close,
    _file_version,
    _h,
    _levels,
    _minute_rows,
    _redact,
    _series_table,
    _with_database,
    all_series,
    environment,
    key_constraints,
    migration_head,
)
from benchmarks.report import Check, Progress, finish
from lingtan.core import latest
from lingtan.core.rollups import LEVELS, MINUTE, backfill_compressor_hours, refresh_keys
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.migrate import upgrade
from lingtan.kernel.timegrid import floor_time
from simulators import site as demo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASE = "lingtan_bench_dashboard"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "dashboard.json"
SITE_FILE = ROOT / "deploy" / "site-demo-plant.yaml"
SITE_ID = demo.SITE_ID
GATEWAY_ID = "demo-gw-1"  # deploy/gateway.yaml
DAY = timedelta(days=1)
# Bump when the generated data changes: a database made by another version is rebuilt.
GENERATOR_VERSION = 1
ROLLUP_TABLES = tuple(table for table, _, _ in LEVELS)
RENDER_TARGET_MS = 2000.0  # warm p95, navigation start → fully rendered
CALLBACK_TARGET_MS = 300.0  # p95 server time of one refresh callback
FILL_STEP_MINUTES = 60  # minutes appended per transaction when catching up to now


# ---------------------------------------------------------------------------------------------
# the demo plant: its seven meters with the quantities their gateway profiles read


def demo_layout() -> list[Meter]:
    """The meters of deploy/gateway.yaml with the quantities of their device profiles.

    Shapes (benchmarks.kpi.Series): a daytime cosine for the grid, boiler, heat recovery and
    production line, a half sine from 06:00 to 18:00 for PV and a small noon export hump, a
    10-minute load/unload cycle for the compressors; counters are the exact integral of the rate.
    """
    out: list[Meter] = []
    sid = 0

    def add(meter: Meter, *series: dict[str, Any]) -> None:
        nonlocal sid
        for s in series:
            sid += 1
            meter.series.append(Series(sid=sid, meter_id=meter.id, **s))
        out.append(meter)

    def e0(key: str, scale: float = 1e6) -> float:
        return round(1e4 + scale * _h("demo", key), 2)

    imp = {"base": 300.0, "amp": 90.0, "peak": 14.0}
    exp = {"wstart": 11.0, "wlen": 3.0, "wpeak": 15.0}
    add(Meter(demo.GRID, "Grid incomer", "grid_import", "modbus-tcp", {}),
        {"quantity": "active_energy_import", "counter": True, **imp, "e0": e0("import"),
         "noise": 0.5 * (imp["base"] - imp["amp"]) / 60},
        {"quantity": "active_energy_export", "counter": True, **exp, "e0": e0("export", 1e4)},
        {"quantity": "active_power", "counter": False, **imp, **exp, "wsign": -1.0, "noise": 0.02},
        {"quantity": "voltage", "counter": False, "base": 230.0, "amp": 2.0, "peak": 4.0, "noise": 0.005,
         "res": 0.1},
        {"quantity": "current", "counter": False, "base": 450.0, "amp": 135.0, "noise": 0.02, "res": 0.1},
        {"quantity": "frequency", "counter": False, "base": 50.0, "amp": 0.02, "noise": 0.001},
        {"quantity": "power_factor", "counter": False, "base": 0.95, "amp": 0.02, "noise": 0.01,
         "res": 0.001})
    pv = {"wstart": 6.0, "wlen": 12.0, "wpeak": 180.0}
    add(Meter(demo.PV, "Rooftop PV inverter", "pv_generation", "modbus-tcp", {}),
        {"quantity": "active_energy_export", "counter": True, **pv, "e0": e0("pv")},
        {"quantity": "active_power", "counter": False, **pv, "noise": 0.05},
        {"quantity": "state", "counter": False, "base": 4.0, "res": 1.0})
    for i, spec in enumerate(demo.COMPRESSORS, start=1):
        duty = {"model": "duty", "duty": 5 + i % 4, "offset": i}
        rated = spec.rated_kw
        add(Meter(spec.device_id, f"Screw compressor {i}", "compressor", "modbus-tcp", {}),
            {"quantity": "active_energy_import", "counter": True, **duty, "loaded": rated * 0.95,
             "unloaded": rated * 0.3, "e0": e0(spec.device_id)},
            {"quantity": "running_hours", "counter": True, **duty, "loaded": 1.0, "unloaded": 1.0,
             "e0": e0("run" + spec.device_id, 2e4)},
            {"quantity": "loaded_hours", "counter": True, **duty, "loaded": 1.0, "unloaded": 0.0,
             "e0": e0("loaded" + spec.device_id, 1e4)},
            {"quantity": "active_power", "counter": False, **duty, "loaded": rated * 0.95,
             "unloaded": rated * 0.3, "noise": 0.02},
            {"quantity": "air_flow", "counter": False, **duty, "loaded": spec.fad_m3min, "unloaded": 0.0,
             "noise": 0.02},
            {"quantity": "state", "counter": False, **duty, "loaded": 2.0, "unloaded": 1.0, "res": 1.0},
            {"quantity": "air_pressure", "counter": False, "base": 7.0, "amp": 0.2, "noise": 0.01},
            {"quantity": "temperature", "counter": False, **duty, "loaded": 84.0, "unloaded": 72.0,
             "noise": 0.01, "res": 0.1})
    gas = {"base": 60.0, "amp": 20.0, "peak": 10.0}  # m³/h
    steam = {"base": 0.8, "amp": 0.25, "peak": 10.0}  # t/h
    add(Meter(demo.BOILER, "Gas-fired steam boiler", "boiler_fuel", "modbus-tcp", {}),
        {"quantity": "gas_volume", "counter": True, **gas, "e0": e0("gas"),
         "noise": 0.5 * (gas["base"] - gas["amp"]) / 60},
        {"quantity": "steam_mass", "counter": True, **steam, "e0": e0("steam", 1e4), "res": 0.001},
        {"quantity": "gas_flow", "counter": False, **gas, "noise": 0.03},
        {"quantity": "steam_flow", "counter": False, **steam, "noise": 0.03, "res": 0.001})
    heat = {"base": 50.0, "amp": 10.0, "peak": 13.0}  # kW of heat
    add(Meter(demo.HEAT_RECOVERY, "Compressor heat recovery", "heat_recovery", "modbus-tcp", {}),
        {"quantity": "heat_energy", "counter": True, **heat, "scale": 0.0036, "res": 0.001,
         "e0": e0("heat", 4e3)},
        {"quantity": "heat_power", "counter": False, **heat, "noise": 0.03},
        {"quantity": "temperature", "counter": False, "base": 45.0, "amp": 3.0, "peak": 13.0, "noise": 0.01,
         "res": 0.1},
        # water through the loop at a 10 K rise: 0.086 m³ per kWh of heat
        {"quantity": "water_volume", "counter": True, **heat, "scale": 0.086, "e0": e0("water", 1e5)})
    add(Meter(demo.LINE, "Production line 1", "production", "mqtt", {}),
        {"quantity": "production_count", "counter": True, "base": 240.0, "amp": 120.0, "peak": 12.0,
         "res": 1.0, "e0": round(1e5 * _h("demo", "units"))},
        {"quantity": "active_power", "counter": False, "base": 40.0, "amp": 15.0, "peak": 12.0,
         "noise": 0.03})
    return out


# ---------------------------------------------------------------------------------------------
# the database: generated once, kept, and brought up to now on every run


def data_start(now: datetime, days: int) -> datetime:
    """The China midnight ``days`` days before today's: rollup buckets of every level align with it."""
    return floor_time(now, DAY) - days * DAY


def minute_index(start: datetime, t: datetime) -> int:
    """Index of the minute holding ``t``; the reading of minute k is stamped ``start + k min``."""
    return int((floor_time(t, MINUTE) - start) / MINUTE)


def wanted_params(days: int, head: str, series: list[Series]) -> dict[str, Any]:
    return {"site": SITE_ID, "days": days, "generator": GENERATOR_VERSION, "migration": head,
            "series": len(series)}


@dataclass
class Stored:
    params: dict[str, Any]
    start: datetime
    minutes: int  # minutes [0, minutes) are stored
    report: dict[str, Any]


def stored_state(url: str) -> Stored | None:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT params, start, minutes, report FROM bench_dashboard_generation"
                               " WHERE finished_at IS NOT NULL").fetchone()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return None
    return Stored(row[0], row[1], row[2], row[3]) if row else None


def recreate_database(server_url: str, name: str, progress: Progress) -> str:
    with psycopg.connect(libpq_url(server_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    upgrade(url)
    get_engine(url).dispose()
    progress(f"created database {name} and applied the migrations")
    return url


def setup_site(url: str, meters: list[Meter]) -> dict[str, Any]:
    """The meters as the demo gateway registers them, then the site file, as `lingtan site import`."""
    from gateway.sinks.postgres import register_devices
    from lingtan.core.site_model import apply_site_file

    register_devices(url, GATEWAY_ID, SITE_ID, "Demo plant, Shenyang",
                     [(m.id, m.name, m.role, m.protocol) for m in meters])
    result = apply_site_file(url, SITE_FILE)
    return {"site_created": result.site_created, "meters": result.meters,
            "green_purchases": result.green_purchases}


def generate(url: str, start: datetime, end_k: int, meters: list[Meter], params: dict[str, Any],
             chunk_days: int, progress: Progress) -> dict[str, Any]:
    """Site, every minute reading in [0, end_k) and the four rollup levels, keys, compressor hours."""
    t0 = time.perf_counter()
    series = all_series(meters)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_dashboard_generation (params jsonb NOT NULL, start timestamptz"
                     " NOT NULL, minutes int NOT NULL, started_at timestamptz NOT NULL DEFAULT now(),"
                     " finished_at timestamptz, report jsonb)")
        conn.execute("INSERT INTO bench_dashboard_generation (params, start, minutes) VALUES (%s, %s, 0)",
                     (Jsonb(params), start))
        site = setup_site(url, meters)
        progress(f"site {SITE_ID} registered and {SITE_FILE.name} applied: {site}")
        # benchmarks.kpi's minute SQL reads the series' shapes from this table
        _series_table(conn, series)
        conn.execute("ANALYZE bench_kpi_series")
        keys = key_constraints(conn)
        for table, name, _ in keys:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET temp_buffers = '512MB'")
        conn.execute("SET synchronous_commit = off")
        total = len(series) * end_k
        progress(f"generating {total:,} readings ({len(series)} series × {end_k:,} minutes) and their"
                 f" rollups, {chunk_days} days per statement")
        rows = 0
        for k0 in range(0, end_k, chunk_days * 1440):
            k1 = min(k0 + chunk_days * 1440, end_k)
            with conn.transaction():
                conn.execute(_minute_rows(k0, k1, start))
                conn.execute("INSERT INTO readings (time, meter_id, quantity, value, quality)"
                             " SELECT time, meter_id, quantity, value, 0 FROM chunk ORDER BY k, sid")
                for statement in _levels(start):
                    conn.execute(statement)
            rows += len(series) * (k1 - k0)
            progress(f"  day {math.ceil(k1 / 1440):>3}: {rows:,} readings"
                     f" ({rows / (time.perf_counter() - t0):,.0f}/s)")
        for table, name, definition in keys:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        done = backfill_compressor_hours(conn)
        latest.rebuild(conn)  # a writer of readings keeps the last values too (lingtan/core/latest.py)
        progress(f"  keys built, compressor_1h of {done} compressors backfilled, latest readings taken")
        for table in ("readings", *ROLLUP_TABLES, "compressor_1h", "sites", "meters"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        seconds = time.perf_counter() - t0
        report = {"seconds": round(seconds, 1), "readings": rows, "series": len(series), "site": site}
        conn.execute("UPDATE bench_dashboard_generation SET finished_at = now(), minutes = %s, report = %s",
                     (end_k, Jsonb(report)))
    progress(f"generated in {seconds:,.0f} s")
    return report


def append_minutes(conn: psycopg.Connection, start: datetime, k0: int, k1: int) -> None:
    """Minutes [k0, k1) of every series, as a gateway writes them: readings, then the rollups
    through ``lingtan.core.rollups.refresh_keys`` (the refresher's own code), in one transaction."""
    with conn.transaction():
        conn.execute(_minute_rows(k0, k1, start))
        conn.execute("INSERT INTO readings (time, meter_id, quantity, value, quality)"
                     " SELECT time, meter_id, quantity, value, 0 FROM chunk ORDER BY k, sid")
        keys = {(r[0], r[1], r[2]) for r in conn.execute("SELECT meter_id, quantity, time FROM chunk")}
        conn.execute("DROP TABLE chunk")
        latest.catch_up(conn, start + k0 * MINUTE)
        refresh_keys(conn, keys)
        conn.execute("UPDATE bench_dashboard_generation SET minutes = %s", (k1,))


def fill_to_now(url: str, start: datetime, have: int, progress: Progress) -> tuple[int, float]:
    """Append the minutes from ``have`` up to the current one; returns (minutes added, seconds)."""
    t0 = time.perf_counter()
    added = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while (want := minute_index(start, datetime.now(UTC)) + 1) > have:
            k1 = min(want, have + FILL_STEP_MINUTES)
            append_minutes(conn, start, have, k1)
            added += k1 - have
            have = k1
            if added % 600 == 0:
                progress(f"  {added:,} minutes appended")
        if added > 30:
            for table in ("readings", *ROLLUP_TABLES, "compressor_1h"):
                conn.execute(f"ANALYZE {table}")
    return added, time.perf_counter() - t0


class Feeder(threading.Thread):
    """Appends each new minute while the benchmark runs, so the data ends at "now" throughout
    (the tiles call a power reading older than 2 minutes offline)."""

    def __init__(self, url: str, start: datetime, have: int) -> None:
        super().__init__(name="bench-feeder", daemon=True)
        self.url, self.start_time, self.have = url, start, have
        self.stop = threading.Event()
        self.ms: list[float] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while True:
                    now = datetime.now(UTC)
                    want = minute_index(self.start_time, now) + 1
                    if want > self.have:
                        t = time.perf_counter()
                        append_minutes(conn, self.start_time, self.have, want)
                        self.ms.append((time.perf_counter() - t) * 1000)
                        self.have = want
                    # a second after the next minute starts: its readings are then "in"
                    wait = 61 - now.second - now.microsecond / 1e6
                    if self.stop.wait(min(wait, 60.0)):
                        return
        except Exception as exc:  # reported as a failed check: the data stopped at some minute
            self.error = f"{exc.__class__.__name__}: {exc}"


@dataclass
class Data:
    url: str
    start: datetime
    minutes: int
    series: int
    generation: dict[str, Any]
    reused: bool
    filled_minutes: int = 0
    fill_seconds: float = 0.0


def prepare(args: argparse.Namespace, meters: list[Meter], progress: Progress) -> Data:
    series = all_series(meters)
    url = _with_database(args.dsn, args.database)
    head = migration_head(url)
    wanted = wanted_params(args.days, head, series)
    now = datetime.now(UTC)
    stored = None if args.regenerate else stored_state(url)
    if stored is not None:
        behind = now - (stored.start + stored.minutes * MINUTE)
        missing = minute_index(stored.start, now) + 1 - stored.minutes
        if stored.params != wanted:
            progress(f"{args.database} holds {stored.params}, not {wanted}: generating again")
        elif behind > timedelta(hours=args.max_fill_hours):
            progress(f"{args.database} ends {behind} ago, more than --max-fill-hours: generating again")
        else:
            progress(f"reusing {args.database}; appending the {_minutes(max(missing, 0))} since it"
                     " was last written")
            added, seconds = fill_to_now(url, stored.start, stored.minutes, progress)
            progress(f"  {_minutes(added)} appended in {seconds:,.1f} s")
            return Data(url, stored.start, stored.minutes + added, len(series), stored.report, True,
                        added, seconds)
    url = recreate_database(args.dsn, args.database, progress)
    start = data_start(now, args.days)
    report = generate(url, start, minute_index(start, now) + 1, meters, wanted, args.chunk_days, progress)
    added, seconds = fill_to_now(url, start, minute_index(start, now) + 1, progress)
    return Data(url, start, minute_index(start, now) + 1 + added, len(series), report, False, added, seconds)


# ---------------------------------------------------------------------------------------------
# is the data what the product would have stored?


def verify_data(url: str, start: datetime, meters: list[Meter]) -> list[Check]:
    """Counts of every level, compressor_1h, the site model, in one snapshot (the feeder writes on)."""
    checks = []
    with psycopg.connect(url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        minutes = conn.execute("SELECT minutes FROM bench_dashboard_generation").fetchone()[0]
        expected = len(all_series(meters)) * minutes
        counts = {"readings": conn.execute("SELECT count(*) FROM readings").fetchone()[0],
                  "readings_1m rows": conn.execute("SELECT count(*) FROM readings_1m").fetchone()[0]}
        for table in ROLLUP_TABLES:
            counts[table] = conn.execute(f"SELECT coalesce(sum(count), 0) FROM {table}").fetchone()[0]
        bad = {k: v for k, v in counts.items() if v != expected}
        checks.append(Check("every level counts every reading", not bad,
                            f"{expected:,} readings ({minutes:,} minutes) in readings and each rollup level"
                            if not bad else f"expected {expected:,}, got {bad}"))
        hours = conn.execute("SELECT count(*) FROM readings_1h WHERE quantity = 'air_flow'").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM compressor_1h").fetchone()[0]
        checks.append(Check("compressor_1h filled", rows == hours and rows > 0,
                            f"{rows:,} compressor hours for {hours:,} hours of air flow"))
        series, differ = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE r.time IS DISTINCT FROM l.time"
            " OR r.value IS DISTINCT FROM l.value) FROM latest_readings l LEFT JOIN LATERAL ("
            " SELECT time, value FROM readings r WHERE r.meter_id = l.meter_id AND r.quantity = l.quantity"
            " ORDER BY time DESC LIMIT 1) r ON true").fetchone()
        want_series = len(all_series(meters))
        checks.append(Check("latest readings are the newest", series == want_series and not differ,
                            f"{series} series, each with its newest stored reading" if not differ
                            else f"{differ} of {series} series differ from their newest reading"))
        roles = dict(conn.execute("SELECT id, role FROM meters WHERE site_id = %s", (SITE_ID,)).fetchall())
        tz = conn.execute("SELECT timezone FROM sites WHERE id = %s", (SITE_ID,)).fetchone()
        purchases = conn.execute("SELECT count(*) FROM green_purchases WHERE site_id = %s",
                                 (SITE_ID,)).fetchone()[0]
    want = {m.id: m.role for m in meters}
    ok = roles == want and tz is not None and tz[0] == demo.TIMEZONE and purchases == 2
    checks.append(Check("site model applied", ok, f"{len(roles)} meters with their roles, {tz and tz[0]},"
                        f" {purchases} green-power purchases" if ok else f"meters {roles}, tz {tz}"))
    return checks


def verify_rollups(url: str, start: datetime, days: int) -> Check:
    """Re-materialise a sample with ``lingtan.core.rollups.refresh_keys`` and compare, then roll back:
    four series and a compressor for the first three hours of the data and 10:00–13:00 of a day
    in the middle, with the 15 min, 1 h and 1 day buckets and compressor hours above them."""
    picks = [(demo.GRID, "active_energy_import"), (demo.PV, "active_energy_export"),
             (demo.GRID, "active_power"), (demo.COMPRESSOR_1, "state"),
             (demo.HEAT_RECOVERY, "heat_energy")]
    mid = start + (days // 2) * DAY
    ranges = [(start, start + timedelta(hours=3)),
              (mid + timedelta(hours=10), mid + timedelta(hours=13))]
    keys = {(m, q, lo + i * MINUTE) for m, q in picks for lo, hi in ranges
            for i in range(int((hi - lo) / MINUTE))}
    columns = "count, min, max, avg, first, last, delta, covered, gap_delta"
    hour_columns = "flow_minutes, air_m3, loaded_minutes, loaded_flow_sum, loaded_kw_minutes, loaded_kw_sum"

    def snapshot(conn: psycopg.Connection) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        out: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for lo, hi in ranges:
            day = floor_time(lo, DAY)
            for table in ROLLUP_TABLES:
                a, b = (day, day + DAY) if table == "readings_1d" else (lo, hi)
                for m, q in picks:
                    for row in conn.execute(
                            f"SELECT bucket, {columns} FROM {table} WHERE meter_id = %s AND quantity = %s"
                            " AND bucket >= %s AND bucket < %s", (m, q, a, b)):
                        out[(table, m, q, row[0])] = tuple(row[1:])
            for row in conn.execute(f"SELECT bucket, {hour_columns} FROM compressor_1h WHERE meter_id = %s"
                                    " AND bucket >= %s AND bucket < %s", (demo.COMPRESSOR_1, lo, hi)):
                out[("compressor_1h", demo.COMPRESSOR_1, "", row[0])] = tuple(row[1:])
        return out

    with psycopg.connect(url) as conn:
        ours = snapshot(conn)
        try:
            refresh_keys(conn, keys)
            theirs = snapshot(conn)
        finally:
            conn.rollback()
    diffs = []
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            diffs.append(f"{key}: {'missing in generated' if a is None else 'not re-materialised'}")
        elif not all(_close(x, y, 1e-9) for x, y in zip(a, b, strict=True)):
            diffs.append(f"{key}: generated {a}, refresh_keys {b}")
    return Check("rollups = refresh_keys", not diffs and bool(ours),
                 f"{len(ours):,} buckets (4 levels and compressor hours) of {len(picks)} series ×"
                 f" {len(ranges)} three-hour samples equal" if not diffs
                 else f"{len(diffs)} differences, e.g. {'; '.join(diffs[:3])}")


# ---------------------------------------------------------------------------------------------
# the page in Chromium

# Records every Dash XHR (the renderer uses fetch) on the page's own clock: when it was sent and
# when the page got to its answer (the body read: late when the main thread is busy); keeps the
# body of the first refresh-callback request, for the HTTP replay. Also collects the main
# thread's long tasks (> 50 ms), which is where a busy page spends its time.
_PAGE_HOOK = r"""
(() => {
  window.__long = [];
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries()) window.__long.push([e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (e) {}
  const orig = window.fetch;
  window.__bench = [];
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : (input && input.url) || '';
    if (!url.includes('_dash-')) return orig.apply(this, arguments);
    const body = init && typeof init.body === 'string' ? init.body : '';
    let output = '';
    try { output = JSON.parse(body).output || ''; } catch (e) {}
    const refresh = output.includes('chart-state.data');
    const rec = {path: url.replace(/^.*\//, ''), output: output.slice(0, 80), refresh: refresh,
                 start: performance.now(), body: null};
    if (refresh && !window.__bench.some(r => r.refresh)) rec.body = body;
    window.__bench.push(rec);
    const p = orig.apply(this, arguments);
    p.then(r => {
      rec.status = r.status;
      r.clone().text().then(t => { rec.handled = performance.now(); rec.bytes = t.length; });
    }, () => { rec.failed = true; });
    return p;
  };
})();
"""

# Fully rendered: every tile shows a formatted number and every trace of the power chart holds
# points (tests/dashboard/browser.py wait_for_tile_numbers + wait_for_chart_points, in one
# check). Evaluated every animation frame; returns the page clock (ms since navigation start).
_RENDERED = r"""
([ids, pattern]) => {
  const re = new RegExp(pattern);
  const shown = id => {
    const el = document.getElementById(id);
    return el && re.test(el.textContent.trim());
  };
  if (!ids.every(shown)) return false;
  const gd = document.getElementById('power-chart')?.querySelector('.js-plotly-plot');
  if (!(gd && gd.data && gd.data.length > 0
        && gd.data.every(t => (t.y || []).some(v => v !== null && v !== undefined)))) return false;
  return performance.now();
}
"""

# Network side from Resource Timing: when each response arrived, and the server's time to first
# byte (the answer is built whole before it is sent, so that is the callback's server time).
_TIMINGS = r"""
() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const pick = re => res.filter(e => re.test(e.name)).map(e => (
    {start: e.startTime, request: e.requestStart, response: e.responseStart, end: e.responseEnd}));
  return {html: nav.responseEnd, dcl: nav.domContentLoadedEventEnd, plotly: pick(/plotly[^/]*\.js/),
          layout: pick(/_dash-layout/), updates: pick(/_dash-update-component/),
          fetches: window.__bench || [], long: window.__long || []};
}
"""


@dataclass
class PageLoad:
    kind: str
    rendered_ms: float | None
    phases: dict[str, float | None] = field(default_factory=dict)
    chart_points: list[int] = field(default_factory=list)  # non-null values per trace
    errors: list[str] = field(default_factory=list)
    refresh_body: str | None = None


def _phases(t: dict[str, Any], rendered: float | None) -> dict[str, float | None]:
    """Milestones on the page clock (ms from navigation start) and a few durations."""
    fetches, updates = t["fetches"], t["updates"]

    def first(pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return next((f for f in fetches if pred(f)), {})

    def network(f: dict[str, Any]) -> dict[str, Any]:
        """The Resource Timing entry of a fetch: the update request that started closest to it."""
        if not f or not updates:
            return {}
        return min(updates, key=lambda u: abs(u["start"] - f["start"]))

    router, refresh = first(lambda f: "page-content.children" in f["output"]), first(lambda f: f["refresh"])
    r_net = network(refresh)
    end = rendered if rendered is not None else math.inf
    long = [(a, d) for a, d in t["long"] if a < end]
    return {
        "html": t["html"], "scripts": t["dcl"],
        "layout": t["layout"][0]["end"] if t["layout"] else None,
        "router_in": network(router).get("end"),
        "refresh_sent": refresh.get("start"),
        "refresh_in": r_net.get("end"),
        "refresh_handled": refresh.get("handled"),
        "plotly_js": max((p["end"] for p in t["plotly"]), default=None),
        "rendered": rendered,
        "refresh_server_ms": (r_net["response"] - r_net["request"]) if r_net.get("request") else None,
        "refresh_bytes": refresh.get("bytes"),
        "long_tasks_ms": sum(d for _, d in long),
        "longest_task_ms": max((d for _, d in long), default=0.0),
    }


def load_overview(context: Any, base: str, kind: str, timeout_ms: float) -> PageLoad:
    """One navigation to the Overview in ``context``, timed to fully rendered on the page's clock."""
    from dashboard.tiles import TILE_IDS
    from tests.dashboard.browser import _NUMBER, add_session_cookie, chart_traces, collect_console_errors

    page = context.new_page()
    try:
        add_session_cookie(page, base)  # minted now: a test session is re-checked after 60 s
        errors = collect_console_errors(page)
        page.goto(base + "/", wait_until="commit")
        try:
            handle = page.wait_for_function(_RENDERED, arg=[list(TILE_IDS), _NUMBER.pattern],
                                            polling="raf", timeout=timeout_ms)
            rendered: float | None = float(handle.json_value())
        except Exception as exc:  # a page that never renders is a wrong result, reported below
            errors.append(f"not rendered within {timeout_ms / 1000:.0f} s: {exc.__class__.__name__}")
            rendered = None
        timings = page.evaluate(_TIMINGS)
        points = [t["values"] for t in chart_traces(page)]
        body = next((f["body"] for f in timings["fetches"] if f.get("body")), None)
        return PageLoad(kind, rendered, _phases(timings, rendered), points, list(errors), body)
    finally:
        page.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BrowserRun:
    chromium: str
    server_start_s: list[float]  # process start → first HTTP answer, per cold start
    cold: list[PageLoad]
    warm: list[PageLoad]
    cached: list[PageLoad]
    http_tick: Timing | None
    http_full: Timing | None
    http_bytes: dict[str, float]
    http_errors: list[str]


@contextmanager
def _server(url: str) -> Iterator[tuple[str, float]]:
    from tests.dashboard.browser import dashboard_server

    t = time.perf_counter()
    with dashboard_server(url, free_port(), env={"LINGTAN_SITE_ID": SITE_ID}) as base:
        yield base, time.perf_counter() - t


def browser_run(url: str, cold_starts: int, loads: int, runs: int, full_runs: int, timeout_s: float,
                progress: Progress) -> BrowserRun:
    """``cold_starts`` times: start the server and load the page once (cold); on the last server
    also the warm loads and the HTTP replay."""
    from tests.dashboard.browser import WALL_SCREEN, chromium

    timeout_ms = timeout_s * 1000
    cold: list[PageLoad] = []
    starts: list[float] = []
    with chromium() as browser:
        progress(f"Chromium {browser.version}")
        for n in range(cold_starts):
            with _server(url) as (base, started):
                starts.append(started)

                def fresh(kind: str) -> PageLoad:
                    context = browser.new_context(viewport=WALL_SCREEN)
                    context.add_init_script(_PAGE_HOOK)
                    try:
                        return load_overview(context, base, kind, timeout_ms)
                    finally:
                        context.close()

                cold.append(fresh("cold"))
                progress(f"  server start {n + 1}/{cold_starts}: answering after {started:.1f} s,"
                         f" first page rendered at {_fmt(cold[-1].rendered_ms)} ms")
                if n < cold_starts - 1:
                    continue
                warm = []
                for i in range(loads):
                    warm.append(fresh("warm"))
                    progress(f"  warm {i + 1}/{loads}: {_fmt(warm[-1].rendered_ms)} ms")
                context = browser.new_context(viewport=WALL_SCREEN)
                context.add_init_script(_PAGE_HOOK)
                cached = []
                try:
                    load_overview(context, base, "cached", timeout_ms)  # fills the context's cache
                    for i in range(loads):
                        cached.append(load_overview(context, base, "cached", timeout_ms))
                        progress(f"  same context {i + 1}/{loads}: {_fmt(cached[-1].rendered_ms)} ms")
                finally:
                    context.close()
                body = next((p.refresh_body for p in (*cold, *warm) if p.refresh_body), None)
                if body is None:
                    tick = full = None
                    sizes: dict[str, float] = {}
                    errors = ["no refresh-callback request was seen on the page: nothing to replay"]
                else:
                    progress(f"replaying the refresh callback over HTTP: {runs} ticks,"
                             f" {full_runs} full reloads")
                    tick, full, sizes, errors = http_replay(base, body, runs, full_runs)
        return BrowserRun(browser.version, starts, cold, warm, cached, tick, full, sizes, errors)


def http_replay(base: str, captured: str, runs: int, full_runs: int
                ) -> tuple[Timing, Timing, dict[str, float], list[str]]:
    """POST the page's own refresh-callback body: ticks chain the chart state each answer returns
    (what the browser sends back), full reloads send none (a first load, or every 10 minutes)."""
    import httpx

    from tests.dashboard.browser import _NUMBER, minted_session

    template = json.loads(captured)
    errors: list[str] = []
    sizes: dict[str, list[int]] = {"tick": [], "full": []}

    def body(state: dict[str, Any] | None, n: int) -> dict[str, Any]:
        b = copy.deepcopy(template)
        for item in b["inputs"]:
            if item["id"] == "refresh" and item["property"] == "n_intervals":
                item["value"] = n
        for item in b["state"]:
            if item["id"] == "chart-state":
                item["value"] = state
        b["changedPropIds"] = ["refresh.n_intervals"]
        return b

    with httpx.Client(base_url=base, timeout=60.0) as client:
        def call(state: dict[str, Any] | None, n: int, kind: str) -> tuple[float, dict[str, Any] | None]:
            name, cookie, token = minted_session()  # fresh: a test session is re-checked after 60 s
            t = time.perf_counter()
            r = client.post("/_dash-update-component", json=body(state, n),
                            headers={"Cookie": f"{name}={cookie}", "X-CSRFToken": token})
            ms = (time.perf_counter() - t) * 1000
            sizes[kind].append(len(r.content))
            if r.status_code != 200:
                errors.append(f"{kind}: HTTP {r.status_code} {r.text[:120]}")
                return ms, None
            out = r.json()["response"]
            bad = [k for k in ("tile-grid-kw", "tile-today-kwh", "tile-intensity-24h")
                   if not _NUMBER.match(str(out.get(k, {}).get("children", "")))]
            if bad or out.get("db-banner", {}).get("className") != "banner hidden":
                errors.append(f"{kind}: tiles {bad} without a number or the error banner shown")
            return ms, out["chart-state"]["data"]

        state = None
        for n in range(3):  # warm-up, and a state to start the ticks from
            _, state = call(state, n, "tick")
        sizes["tick"].clear()
        tick = []
        for n in range(runs):
            ms, state = call(state, 10 + n, "tick")
            tick.append(ms)
        full = [call(None, 1000 + n, "full")[0] for n in range(full_runs)]
    path = "POST /_dash-update-component"
    return (Timing("refresh callback, tick", path, runs, tick),
            Timing("refresh callback, full reload", path, full_runs, full),
            {k: statistics.median(v) for k, v in sizes.items() if v}, errors)


# ---------------------------------------------------------------------------------------------
# the refresh callback in-process, and where its time goes


def _outputs_ok(out: dict[tuple[str, str], Any], kind: str) -> str | None:
    from dashboard.tiles import TILE_IDS

    if out.get(("db-banner", "className")) != "banner hidden":
        return f"{kind}: error banner {out.get(('db-banner', 'children'))!r}"
    missing = [t for t in TILE_IDS if out.get((t, "className")) != "tile-value"]
    return f"{kind}: tiles without a value: {missing}" if missing else None


def _overview_refresh(url: str, state: dict[str, Any] | None) -> dict[tuple[str, str], Any]:
    """One refresh of the Overview as its callback makes it: the page's load and render through
    the framework's refresh."""
    from dashboard.controls import view_of
    from dashboard.data import make_reader
    from dashboard.page import PageQuery
    from dashboard.pages import BY_PATH
    from dashboard.refresh import refresh

    view = view_of(SITE_ID, None, None, None, None, SITE_ID)
    return refresh(BY_PATH["/"], make_reader(url), PageQuery(view, datetime.now(UTC), state=state))


def inprocess_run(url: str, runs: int, full_runs: int, progress: Progress
                  ) -> tuple[Timing, Timing, dict[str, Any], list[str]]:
    errors: list[str] = []
    state = None
    for _ in range(3):  # warm-up: engine, pool, imports, caches
        out = _overview_refresh(url, state)
        state = out.get(("chart-state", "data"))
    tick = []
    for _ in range(runs):
        reloaded = (state or {}).get("reloaded")
        t = time.perf_counter()
        out = _overview_refresh(url, state)
        tick.append((time.perf_counter() - t) * 1000)
        state = out.get(("chart-state", "data"))
        if (problem := _outputs_ok(out, "tick")) is not None:
            errors.append(problem)
        if (state or {}).get("reloaded") != reloaded:
            progress("  (this tick was the chart's 10-minute full reload)")
    full = []
    for _ in range(full_runs):
        t = time.perf_counter()
        out = _overview_refresh(url, None)
        full.append((time.perf_counter() - t) * 1000)
        if (problem := _outputs_ok(out, "full reload")) is not None:
            errors.append(problem)
    progress("  profiling one tick and one full reload")
    profiles = {"tick": profile_refresh(url, state), "full reload": profile_refresh(url, None)}
    path = "dashboard.refresh.refresh(the Overview page, …)"
    return (Timing("refresh(), tick", path, runs, tick),
            Timing("refresh(), full reload", path, full_runs, full), profiles, errors[:10])


_LOADER = "the rest: connection and its liveness check, glue"


class _Proxy:
    """A module stand-in whose named functions are timed as steps of the profile."""

    def __init__(self, module: Any, wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]],
                 names: dict[str, str]) -> None:
        self._module, self._wrap, self._names = module, wrap, names

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        return self._wrap(self._names[name], value) if name in self._names else value


def profile_refresh(url: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """One more refresh with each part of the snapshot timed and every SQL statement attributed to
    the part that ran it; then the JSON encoding Dash does on the answer."""
    from plotly.io.json import to_json_plotly
    from sqlalchemy import event

    import dashboard.pages.overview as overview_module
    import dashboard.snapshot as snapshot_module
    from dashboard.pages import BY_PATH
    from dashboard.refresh import ordered, output_keys

    engine = get_engine(url)
    steps: dict[str, list[float]] = {}  # step -> [ms, sql ms, statements]
    statements: dict[str, list[float]] = {}  # text -> [calls, ms]
    current = [_LOADER]

    def sent(statement: str, ms: float) -> None:
        key = " ".join(statement.split())
        entry = statements.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += ms
        step = steps.setdefault(current[0], [0.0, 0.0, 0])
        step[1] += ms
        step[2] += 1

    class Timed(psycopg.Cursor):  # type: ignore[type-arg]
        """Every statement on the wire, also those sent through a raw driver cursor (the series
        cache), which SQLAlchemy's cursor events do not see."""

        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return super().execute(query, params, **kw)
            finally:
                sent(str(query), (time.perf_counter() - t) * 1000)

    def timed_cursors(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.cursor_factory = Timed

    def wrap(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            outer, current[0] = current[0], label
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                steps.setdefault(label, [0.0, 0.0, 0])[0] += (time.perf_counter() - t) * 1000
                current[0] = outer
        return timed

    kpi_names = {"site_power": "site_power: every meter's newest power",
                 "window_kpis_many": "window_kpis_many: today, last 15 min, last 24 h",
                 "site_overview": "site_overview: power now (today from window_kpis_many)",
                 "power_series": "power_series: chart minutes",
                 "power_by_role": "power_by_role: flows"}
    saved = (snapshot_module.kpi, snapshot_module.kpi_series, snapshot_module.load_site_model,
             overview_module.render)
    snapshot_module.kpi = _Proxy(saved[0], wrap, kpi_names)  # type: ignore[assignment]
    snapshot_module.kpi_series = wrap("kpi_series: intensity, 24 h hourly", saved[1])  # type: ignore[assignment]
    snapshot_module.load_site_model = wrap(  # type: ignore[assignment]
        "load_site_model: site, meters, purchases, overrides", saved[2])
    overview_module.render = wrap(  # type: ignore[assignment]
        "render: tiles, chart patch, figures (Python)", saved[3])
    engine.dispose()  # new connections get the timing cursors
    event.listen(engine, "connect", timed_cursors)
    try:
        t = time.perf_counter()
        out = _overview_refresh(url, state)
        call_ms = (time.perf_counter() - t) * 1000
    finally:
        event.remove(engine, "connect", timed_cursors)
        engine.dispose()
        (snapshot_module.kpi, snapshot_module.kpi_series, snapshot_module.load_site_model,
         overview_module.render) = saved
    t = time.perf_counter()
    response = {"multi": True, "response": {}}
    keys = output_keys(BY_PATH["/"])
    for (cid, prop), value in zip(keys, ordered(keys, out), strict=True):
        response["response"].setdefault(cid, {})[prop] = value
    encoded = to_json_plotly(response)
    json_ms = (time.perf_counter() - t) * 1000
    # the rest of the call: checking out a connection, refresh()'s own code
    loader = steps.pop(_LOADER, [0.0, 0.0, 0])
    loader[0] = call_ms - sum(v[0] for v in steps.values())
    rows = [{"step": k, "ms": round(v[0], 1), "sql_ms": round(v[1], 1), "statements": int(v[2])}
            for k, v in {_LOADER: loader, **steps}.items()]
    rows.append({"step": "JSON encoding of the answer (Dash's to_json)", "ms": round(json_ms, 1),
                 "sql_ms": 0.0, "statements": 0})
    sql_ms = sum(v[1] for v in statements.values())
    top = sorted(statements.items(), key=lambda kv: -kv[1][1])[:6]
    return {"call_ms": round(call_ms, 1), "sql_ms": round(sql_ms, 1),
            "statements": int(sum(v[0] for v in statements.values())),
            "outside_sql_ms": round(call_ms - sql_ms, 1), "response_bytes": len(encoded),
            "steps": rows,
            "top_statements": [{"statement": k, "calls": int(n), "ms": round(ms, 1)} for k, (n, ms) in top]}


# ---------------------------------------------------------------------------------------------
# the report


def _minutes(n: int) -> str:
    return f"{n:,} minute{'' if n == 1 else 's'}"


def _fmt(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _timing(label: str, values: list[float], path: str) -> Timing:
    return Timing(label, path, len(values), values)


def render(config: dict[str, Any], env: dict[str, Any], data: Data, br: BrowserRun | None,
           loads: dict[str, Timing], calls: list[Timing], profiles: dict[str, Any],
           phases: dict[str, dict[str, float | None]], feeder: dict[str, Any], checks: list[Check]) -> str:
    lines = [
        "",
        f"Lingtan dashboard benchmark: site {SITE_ID} ({config['meters']} meters, {data.series} series),"
        f" one reading a minute from {data.start.astimezone(ZoneInfo(demo.TIMEZONE)):%Y-%m-%d %H:%M}"
        f" {demo.TIMEZONE} ({config['days']} days before today) to now",
        f"database {config['database']}: {env['database_bytes'] / 1e6:,.0f} MB,"
        f" {data.series * data.minutes:,} readings ("
        + (f"reused, {_minutes(data.filled_minutes)} appended in {data.fill_seconds:,.1f} s" if data.reused
           else f"generated in {data.generation['seconds']:,.0f} s") + ")",
        f"PostgreSQL {env['postgresql']} (shared_buffers {env['server_settings'].get('shared_buffers')}),"
        f" Python {env['python']}, {env['cpus']} CPUs"
        + (f", Chromium {br.chromium}; the server answered HTTP {statistics.median(br.server_start_s):.1f} s"
           " after its start (median)" if br else ""),
        "",
        f"{'overview page, navigation start → fully rendered':<58}{'runs':>5}{'p50 ms':>10}{'p95 ms':>10}"
        f"{'max ms':>10}",
        "-" * 93,
    ]
    for t in loads.values():
        lines.append(f"{t.label:<58.58}{t.runs:>5}{t.p50:>10,.0f}{t.p95:>10,.0f}{max(t.ms):>10,.0f}")
    if "cold" in loads and "warm" in loads:
        lines.append(f"{'  cold / warm (p50)':<58}{loads['cold'].p50 / loads['warm'].p50:>15.2f}×")
    if phases:
        lines += ["", "where a page load's time goes (ms from navigation start; p50 of each kind's loads)",
                  f"  {'milestone':<52}{'cold':>10}{'warm':>10}{'cached':>10}"]
        for key, label in _PHASE_LABELS:
            lines.append(f"  {label:<52}" + "".join(f"{_fmt(phases.get(k, {}).get(key)):>10}"
                                                     for k in ("cold", "warm", "cached")))
    lines += ["", f"{'refresh callback':<58}{'runs':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}", "-" * 93]
    for t in calls:
        lines.append(f"{t.label + ': ' + t.path:<58.58}{t.runs:>5}{t.p50:>10,.1f}{t.p95:>10,.1f}"
                     f"{max(t.ms):>10,.1f}")
    if br and br.http_bytes:
        lines.append("  answer size (median): " + ", ".join(f"{k} {v / 1000:,.1f} kB" for k, v in
                                                            br.http_bytes.items()))
    lines += ["", "targets"]
    if "warm" in loads:
        w = loads["warm"]
        lines.append(f"  overview rendered, warm p95 (new context each) < {RENDER_TARGET_MS:,.0f} ms:"
                     f" {w.p95:,.0f} ms  {'PASS' if w.p95 < RENDER_TARGET_MS else 'MISS'}")
    for t in calls:
        if "tick" in t.label:
            lines.append(f"  {t.label} ({t.path.split('(')[0]}) p95 < {CALLBACK_TARGET_MS:.0f} ms:"
                         f" {t.p95:,.1f} ms  {'PASS' if t.p95 < CALLBACK_TARGET_MS else 'MISS'}")
    for kind, p in profiles.items():
        lines += ["", f"where one in-process refresh ({kind}) goes: {p['call_ms']:,.1f} ms, {p['statements']}"
                  f" SQL statements taking {p['sql_ms']:,.1f} ms, {p['outside_sql_ms']:,.1f} ms outside SQL;"
                  f" answer {p['response_bytes'] / 1000:,.1f} kB",
                  f"  {'part':<60}{'ms':>9}{'SQL ms':>9}{'stmts':>7}"]
        lines += [f"  {r['step']:<60.60}{r['ms']:>9,.1f}{r['sql_ms']:>9,.1f}{r['statements']:>7}"
                  for r in p["steps"]]
        lines.append("  slowest statements:")
        lines += [f"  {r['ms']:>9,.1f} ms {r['calls']:>4}× {r['statement'][:88]}"
                  for r in p["top_statements"]]
    lines += ["", f"feeder (the gateway's writes during the run): {_minutes(feeder['minutes'])} appended,"
                  f" p50 {_fmt(feeder.get('p50_ms'), 1)} ms each", "", "correctness"]
    lines += [f"  {'ok  ' if c.ok else 'FAIL'} {c.name:<34} {c.detail}" for c in checks]
    return "\n".join(lines)


_PHASE_LABELS = (
    ("html", "HTML in"),
    ("scripts", "Dash scripts loaded and run (DOMContentLoaded)"),
    ("layout", "layout in (_dash-layout)"),
    ("router_in", "router callback answered (page body)"),
    ("refresh_sent", "refresh callback sent"),
    ("refresh_in", "refresh callback answered (network)"),
    ("plotly_js", "plotly.js bundle in (network)"),
    ("refresh_handled", "refresh answer taken up by the page"),
    ("rendered", "fully rendered"),
    ("refresh_server_ms", "  refresh callback server time (TTFB), ms"),
    ("refresh_bytes", "  refresh answer, bytes"),
    ("long_tasks_ms", "  main thread in long tasks before rendered, ms"),
    ("longest_task_ms", "  longest main-thread task, ms"),
)


def _phase_p50(pages: list[PageLoad]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, _ in _PHASE_LABELS:
        values = [p.phases.get(key) for p in pages]
        got = [v for v in values if v is not None]
        out[key] = statistics.median(got) if got else None
    return out


def page_checks(br: BrowserRun) -> list[Check]:
    pages = [*br.cold, *br.warm, *br.cached]
    not_rendered = [p.kind for p in pages if p.rendered_ms is None]
    thin = [(p.kind, p.chart_points) for p in pages if p.rendered_ms is not None
            and (len(p.chart_points) != 3 or min(p.chart_points) < 1438)]
    errors = [e for p in pages for e in p.errors if not e.startswith("not rendered")]
    return [
        Check("every page load rendered", not not_rendered,
              f"{len(pages)} loads: every tile a number, the chart drawn" if not not_rendered
              else f"not rendered: {not_rendered}"),
        Check("power chart holds the 24 h", not thin,
              "3 traces × ≥ 1,438 of 1,440 minutes with values on every load" if not thin
              else f"too few points: {thin[:3]}"),
        Check("no browser errors", not errors, "no console error, page error or failed request"
              if not errors else f"{len(errors)}: {'; '.join(errors[:3])}"),
        Check("HTTP refresh answers", not br.http_errors and br.http_tick is not None,
              "every replayed callback answered 200 with numbers in the tiles" if not br.http_errors
              else "; ".join(br.http_errors[:3])),
    ]


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__.split("\n")[0])
    p.add_argument("--days", type=int, default=30, help="days of 1-minute data before today")
    p.add_argument("--dsn", "--database-url", dest="dsn",
                   default=os.environ.get("LINGTAN_BENCH_DATABASE_URL", DEFAULT_URL),
                   help="server (any database on it; default: $LINGTAN_BENCH_DATABASE_URL or %(default)s)")
    p.add_argument("--database", default=None,
                   help=f"database to generate into and keep (default: {DEFAULT_DATABASE}, or"
                        f" {DEFAULT_DATABASE}_<days>d for other --days)")
    p.add_argument("--regenerate", action="store_true", help="drop and generate the database again")
    p.add_argument("--max-fill-hours", type=float, default=24.0,
                   help="a kept database at most this far behind now is brought up to date; an older"
                        " one is generated again (default: %(default)s)")
    p.add_argument("--cold-starts", type=int, default=3,
                   help="server starts, each followed by one (cold) page load (default: %(default)s)")
    p.add_argument("--loads", type=int, default=10,
                   help="warm page loads of each kind (default: %(default)s)")
    p.add_argument("--runs", type=int, default=50,
                   help="timed refresh ticks, in-process and over HTTP (default: %(default)s)")
    p.add_argument("--full-runs", type=int, default=10,
                   help="timed full-reload refreshes, in-process and over HTTP (default: %(default)s)")
    p.add_argument("--load-timeout", type=float, default=60.0, help="seconds a page may take to render")
    p.add_argument("--no-browser", action="store_true", help="only the in-process refresh callback")
    p.add_argument("--chunk-days", type=int, default=5, help="days generated per SQL statement")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    if args.database is None:
        args.database = DEFAULT_DATABASE if args.days == 30 else f"{DEFAULT_DATABASE}_{args.days}d"
    for name in ("days", "cold_starts", "loads", "runs", "full_runs", "chunk_days"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    meters = demo_layout()
    data = prepare(args, meters, progress)
    feeder = Feeder(data.url, data.start, data.minutes)
    feeder.start()
    checks: list[Check] = []
    br: BrowserRun | None = None
    try:
        progress("checking the data: counts, compressor hours, site model, a sample against refresh_keys")
        checks += verify_data(data.url, data.start, meters)
        checks.append(verify_rollups(data.url, data.start, args.days))
        env = environment(data.url)
        if not args.no_browser:
            br = browser_run(data.url, args.cold_starts, args.loads, args.runs, args.full_runs,
                             args.load_timeout, progress)
            checks += page_checks(br)
        progress(f"in-process refresh(): {args.runs} ticks, {args.full_runs} full reloads")
        tick, full, profiles, errors = inprocess_run(data.url, args.runs, args.full_runs, progress)
        checks.append(Check("in-process refresh answers", not errors, "no error banner, every tile with"
                            " a value" if not errors else "; ".join(errors[:3])))
    finally:
        feeder.stop.set()
        feeder.join(timeout=120)
        get_engine(data.url).dispose()
    checks.append(Check("feeder kept the data current", feeder.error is None,
                        f"{_minutes(len(feeder.ms))} appended while measuring" if feeder.error is None
                        else feeder.error))

    loads: dict[str, Timing] = {}
    phases: dict[str, dict[str, float | None]] = {}
    calls = [tick]
    if br is not None:
        page = "navigation → rendered"
        for key, label, pages in (("cold", "cold start: first load after server start", br.cold),
                                  ("warm", "warm, new browser context each (empty cache)", br.warm),
                                  ("cached", "warm, same browser context (cached scripts)", br.cached)):
            ms = [p.rendered_ms for p in pages if p.rendered_ms is not None]
            if ms:
                loads[key] = _timing(label, ms, page)
                phases[key] = _phase_p50(pages)
        calls += [t for t in (br.http_tick,) if t is not None]
    calls += [full] + ([br.http_full] if br is not None and br.http_full is not None else [])
    feeder_info = {"minutes": len(feeder.ms), "p50_ms": statistics.median(feeder.ms) if feeder.ms else None}
    config = {"site": SITE_ID, "meters": len(meters), "series": data.series, "days": args.days,
              "database": args.database, "start": data.start.isoformat(), "server": _redact(args.dsn),
              "cold_starts": args.cold_starts, "loads": args.loads, "runs": args.runs,
              "full_runs": args.full_runs,
              "viewport": "1920×1080", "refresh_interval_s": 5.0,
              "code": {f: _file_version(f) for f in (
                  "dashboard/refresh.py", "dashboard/snapshot.py", "dashboard/chart.py", "dashboard/tiles.py",
                  "dashboard/pages/overview.py", "lingtan/core/kpi.py", "lingtan/core/counters.py",
                  "lingtan/core/series.py", "lingtan/core/amounts.py")}}
    ok = all(c.ok for c in checks)
    print(render(config, env, data, br, loads, calls, profiles, phases, feeder_info, checks))
    result = {
        "benchmark": "dashboard",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config, "environment": env,
        "data": {"start": data.start.isoformat(), "minutes": data.minutes,
                 "readings": data.series * data.minutes,
                 "reused": data.reused, "appended_minutes": data.filled_minutes,
                 "append_seconds": round(data.fill_seconds, 1), "generation": data.generation},
        "chromium": br.chromium if br else None,
        "server_start_s": [round(x, 2) for x in br.server_start_s] if br else None,
        "page_loads": {k: t.as_dict() for k, t in loads.items()},
        "page_phases_ms": phases,
        "cold_to_warm_p50": (loads["cold"].p50 / loads["warm"].p50
                             if {"cold", "warm"} <= set(loads) else None),
        "callbacks": [{**t.as_dict(), "call": t.label} for t in calls],
        "http_answer_bytes": br.http_bytes if br else None,
        "targets": {
            "render_warm_p95_ms": RENDER_TARGET_MS, "callback_p95_ms": CALLBACK_TARGET_MS,
            "render_met": loads["warm"].p95 < RENDER_TARGET_MS if "warm" in loads else None,
            "callback_met": {t.label + " / " + t.path: t.p95 < CALLBACK_TARGET_MS for t in calls
                             if "tick" in t.label},
        },
        "profiles": profiles,
        "feeder": feeder_info,
        "checks": [asdict(c) for c in checks],
        "correct": ok,
    }
    return finish(args.output, result, ok)


if __name__ == "__main__":
    sys.exit(main())
