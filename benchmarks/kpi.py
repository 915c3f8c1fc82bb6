"""KPI and series latency: the KPI engine on maintained rollups against the same figures from raw rows.

Run:  .venv/bin/python -m benchmarks.kpi [--meters 100] [--days 365] [--dsn URL] [--runs N]

One site (Asia/Shanghai, grid region north_east) with ``--meters`` meters reporting every minute
for ``--days`` days that end at a fixed China midnight (so runs are comparable), generated
entirely in SQL into a dedicated database (``lingtan_bench_kpi``, or ``lingtan_bench_kpi_<M>m_<D>d``
for other sizes) together with the 1 min, 15 min, 1 h and 1 day rollups the refresher would have
written. The database is kept: a later run with the same parameters reuses it and skips the
generation (``--regenerate`` forces it).

Timed, each after a warm-up, in the same run:

1. the 30-day KPI call (``window_kpis``, every meter of the site) from the rollups, and the same
   counter figures computed from raw readings;
2. a one-year hourly series of site electricity consumption (``kpi_series``) from the rollups,
   and the same series computed from raw readings.

p50 and p95 latency and the ratio raw / rollup are printed and written to
``benchmarks/results/kpi.json``. The exit status is non-zero only when a correctness check fails
(the rollup answer differs from the raw one, the generated rollups differ from what
``lingtan.core.rollups.refresh_keys`` makes of the same rows): the 100 ms target is reported as
PASS or MISS, a measurement, not an error.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks.report import Check, Progress, finish
from lingtan.core import latest
from lingtan.core.rollups import LEVELS, backfill_compressor_hours, refresh_keys
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.migrate import alembic_config, upgrade

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASE = "lingtan_bench_kpi"
RESULTS = Path(__file__).resolve().parent / "results" / "kpi.json"

CST = timezone(timedelta(hours=8))
# The data ends at this China midnight whatever the date of the run, so figures stay comparable.
END = datetime(2026, 11, 1, tzinfo=CST)
SITE_ID = "bench-plant"
TARGET_MS = 100.0  # p95 from rollups, the target
# Bump when the generated data or rollups change: a database made by another version is rebuilt.
GENERATOR_VERSION = 1
ROLLUP_TABLES = tuple(table for table, _, _ in LEVELS)
COVER_GAP_S = 15 * 60  # a reading pair further apart than this is a gap, not covered time


# ---------------------------------------------------------------------------------------------
# the site: meters, their quantities and the shape of every series


@dataclass
class Series:
    """One (meter, quantity) and the closed-form shape its minute readings follow.

    ``shape`` series draw ``base + amp·cos(2π(h − peak)/24)`` plus ``wsign ×`` a half sine of
    height ``wpeak`` from ``wstart`` for ``wlen`` hours of every day (PV, export); ``duty`` series
    follow a compressor's 10-minute load cycle, loaded for ``duty`` minutes of it: ``loaded`` while
    loaded, ``unloaded`` otherwise. A counter reads ``e0 + scale ×`` the integral of that rate (per
    hour) since the first minute, in steps of ``res``; load counters also get monotonic noise.
    """

    sid: int
    meter_id: str
    quantity: str
    counter: bool
    model: str = "shape"  # shape | duty
    base: float = 0.0
    amp: float = 0.0
    peak: float = 14.0
    wstart: float = 0.0
    wlen: float = 1.0
    wpeak: float = 0.0
    wsign: float = 1.0
    duty: int = 0
    offset: int = 0
    loaded: float = 0.0
    unloaded: float = 0.0
    scale: float = 1.0
    res: float = 0.01
    e0: float = 0.0
    noise: float = 0.0  # counters: amplitude in units; live values: relative


@dataclass
class Meter:
    id: str
    name: str
    role: str
    protocol: str
    params: dict[str, Any]
    series: list[Series] = field(default_factory=list)


def _h(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) (the layout must not depend on the run)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def layout(meters: int) -> list[Meter]:
    """2 grid incomers, 4 PV inverters, a gas boiler with a steam meter, a heat-recovery loop,
    a production line, one compressor per 15 meters (≤ 6), loads for the rest."""
    if meters < 10:
        raise ValueError("at least 10 meters: 9 fixed roles and one load")
    out: list[Meter] = []
    sid = 0

    def add(meter: Meter, *series: dict[str, Any]) -> None:
        nonlocal sid
        for s in series:
            sid += 1
            meter.series.append(Series(sid=sid, meter_id=meter.id, **s))
        out.append(meter)

    def e0(key: str) -> float:
        return round(1e4 + 1e6 * _h("e0", key), 2)

    # Grid incomers: a daytime-peaking import, a little export around noon, net power signed.
    for i in (1, 2):
        mid = f"grid-{i:02d}"
        imp = {"base": 2300.0 + 200 * i, "amp": 800.0, "peak": 14.0}
        exp = {"wstart": 11.0, "wlen": 3.0, "wpeak": 150.0}
        add(Meter(mid, f"Grid incomer {i}", "grid_import", "modbus-tcp", {"rated_power_kw": 6000.0}),
            {"quantity": "active_energy_import", "counter": True, **imp, "e0": e0(mid + "i"),
             "noise": 0.5 * (imp["base"] - imp["amp"]) / 60},
            {"quantity": "active_energy_export", "counter": True, **exp, "e0": e0(mid + "e")},
            {"quantity": "active_power", "counter": False, **imp, **exp, "wsign": -1.0, "noise": 0.02})
    for i in range(1, 5):
        mid = f"pv-{i:02d}"
        pv = {"wstart": 6.0, "wlen": 12.0, "wpeak": 350.0 + 25 * i}
        add(Meter(mid, f"PV inverter {i}", "pv_generation", "modbus-tcp", {"rated_power_kw": 500.0}),
            {"quantity": "active_energy_export", "counter": True, **pv, "e0": e0(mid)},
            {"quantity": "active_power", "counter": False, **pv, "noise": 0.05})
    gas = {"base": 180.0, "amp": 60.0, "peak": 10.0}  # m³/h
    steam = {"base": 1.4, "amp": 0.45, "peak": 10.0}  # t/h
    add(Meter("boiler-01", "Gas boiler", "boiler_fuel", "modbus-tcp",
              {"fuel": "natural_gas", "boiler_output": {"steam_pressure_mpa_abs": 0.7, "feedwater_c": 20.0}}),
        {"quantity": "gas_volume", "counter": True, **gas, "e0": e0("gas"),
         "noise": 0.5 * (gas["base"] - gas["amp"]) / 60},
        {"quantity": "steam_mass", "counter": True, **steam, "e0": e0("steam") / 100, "res": 0.001},
        {"quantity": "gas_flow", "counter": False, **gas, "noise": 0.03})
    heat = {"base": 250.0, "amp": 50.0, "peak": 13.0}  # kW of heat, counted in GJ
    add(Meter("heat-01", "Compressor heat recovery", "heat_recovery", "modbus-tcp", {}),
        {"quantity": "heat_energy", "counter": True, **heat, "scale": 0.0036, "res": 0.001,
         "e0": e0("heat") / 100},
        {"quantity": "heat_power", "counter": False, **heat, "noise": 0.03})
    add(Meter("line-01", "Production line", "production", "mqtt", {}),
        {"quantity": "production_count", "counter": True, "base": 240.0, "amp": 120.0, "peak": 12.0,
         "res": 1.0, "e0": round(1e5 * _h("units"))})
    compressors = min(6, meters // 15)
    for i in range(1, compressors + 1):
        mid = f"compressor-{i:02d}"
        duty = {"model": "duty", "duty": 5 + i % 4, "offset": i}
        rated = 75.0 if i % 2 else 37.0
        flow = 12.5 if rated == 75.0 else 6.4  # m³/min free air delivery, loaded
        add(Meter(mid, f"Air compressor {i}", "compressor", "modbus-tcp",
                  {"rated_power_kw": rated * 1.2,
                   "compressor": {"rated_kw": rated, "pressure_mpa": 0.7}}),
            {"quantity": "active_energy_import", "counter": True, **duty, "loaded": rated * 0.95,
             "unloaded": rated * 0.3, "e0": e0(mid)},
            {"quantity": "running_hours", "counter": True, **duty, "loaded": 1.0, "unloaded": 1.0,
             "e0": round(2e4 * _h("run", mid), 2)},
            {"quantity": "loaded_hours", "counter": True, **duty, "loaded": 1.0, "unloaded": 0.0,
             "e0": round(1e4 * _h("run", mid), 2)},
            {"quantity": "active_power", "counter": False, **duty, "loaded": rated * 0.95,
             "unloaded": rated * 0.3, "noise": 0.02},
            {"quantity": "air_flow", "counter": False, **duty, "loaded": flow, "unloaded": 0.0,
             "noise": 0.02},
            {"quantity": "state", "counter": False, **duty, "loaded": 2.0, "unloaded": 1.0, "res": 1.0})
    for i in range(1, meters - len(out) + 1):
        mid = f"load-{i:03d}"
        base = round(20.0 + 80.0 * _h("load", i), 1)
        shape = {"base": base, "amp": round(0.3 * base, 1), "peak": round(10.0 + 6.0 * _h("peak", i), 2)}
        add(Meter(mid, f"Sub-meter {i}", "load", "modbus-rtu", {"rated_power_kw": round(base * 2.5)}),
            {"quantity": "active_energy_import", "counter": True, **shape, "e0": e0(mid),
             "noise": 0.5 * (shape["base"] - shape["amp"]) / 60},
            {"quantity": "active_power", "counter": False, **shape, "noise": 0.03})
    return out


def all_series(meters: list[Meter]) -> list[Series]:
    return [s for m in meters for s in m.series]


# ---------------------------------------------------------------------------------------------
# SQL for the minute values: closed forms, so any minute is computed without its predecessors


def _noise(k: str) -> str:
    """Uniform in [0, 1) from the series and the minute (the classic sine hash)."""
    return f"(sin(({k})::float8 * 12.9898 + s.sid * 78.233) * 43758.5453 " \
           f"- floor(sin(({k})::float8 * 12.9898 + s.sid * 78.233) * 43758.5453))"


def _loaded_minutes(k: str) -> str:
    """Loaded minutes in [0, k) of a duty series: loaded while (minute + offset) mod 10 < duty."""
    def n(x: str) -> str:
        return f"(floor(({x}) / 10.0) * s.duty + least(mod({x}, 10), s.duty))"
    return f"({n(f'({k}) + s.offset')} - {n('s.offset')})"


def counter_sql(k: str) -> str:
    """The counter reading at minute ``k`` (an integer SQL expression) of series ``s``."""
    hours = f"(({k})::float8 / 60.0)"
    hod = f"(mod({k}, 1440)::float8 / 60.0)"
    sine = (f"(s.base * {hours} + s.amp * (24.0 / (2 * pi())) * "
            f"(sin(2 * pi() * ({hours} - s.peak) / 24.0) - sin(2 * pi() * (-s.peak) / 24.0)))")
    window = (f"(s.wpeak * (floor(({k}) / 1440) * 2 * s.wlen / pi() + CASE"
              f" WHEN {hod} < s.wstart THEN 0.0"
              f" WHEN {hod} < s.wstart + s.wlen"
              f" THEN s.wlen / pi() * (1 - cos(pi() * ({hod} - s.wstart) / s.wlen))"
              f" ELSE 2 * s.wlen / pi() END))")
    loaded = _loaded_minutes(k)
    duty = f"(({loaded} * s.loaded + (({k}) - {loaded}) * s.unloaded) / 60.0)"
    rate_integral = f"(CASE WHEN s.model = 'duty' THEN {duty} ELSE {sine} + {window} END)"
    return f"(round((s.e0 + s.scale * {rate_integral} + s.noise * {_noise(k)}) / s.res) * s.res)"


def live_sql(k: str) -> str:
    """The instantaneous reading at minute ``k`` of series ``s`` (power, flow, state)."""
    hours = f"(({k})::float8 / 60.0)"
    hod = f"(mod({k}, 1440)::float8 / 60.0)"
    shape = (f"(s.base + s.amp * cos(2 * pi() * ({hours} - s.peak) / 24.0) + s.wsign * s.wpeak * CASE"
             f" WHEN {hod} >= s.wstart AND {hod} < s.wstart + s.wlen"
             f" THEN sin(pi() * ({hod} - s.wstart) / s.wlen) ELSE 0.0 END)")
    duty = f"(CASE WHEN mod(({k}) + s.offset, 10) < s.duty THEN s.loaded ELSE s.unloaded END)"
    value = f"(CASE WHEN s.model = 'duty' THEN {duty} ELSE {shape} END)"
    return f"(round({value} * (1 + s.noise * ({_noise(k)} - 0.5)) / s.res) * s.res)"


# ---------------------------------------------------------------------------------------------
# the database


def _with_database(url: str, name: str) -> str:
    return make_url(libpq_url(url)).set(database=name).render_as_string(hide_password=False)


def _redact(url: str) -> str:
    return make_url(libpq_url(url)).render_as_string(hide_password=True)


def migration_head(url: str) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


@dataclass
class Size:
    meters: int
    days: int
    end: datetime

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def minutes(self) -> int:
        return self.days * 1440


def wanted_params(size: Size, head: str) -> dict[str, Any]:
    return {"meters": size.meters, "days": size.days, "end": size.end.isoformat(),
            "generator": GENERATOR_VERSION, "migration": head}


def stored_params(url: str, table: str = "bench_kpi_generation") -> dict[str, Any] | None:
    """What the database holds, or None when it does not exist or no generation finished."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                f"SELECT params FROM {table} WHERE finished_at IS NOT NULL").fetchone()  # type: ignore[call-overload]
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return None
    return row[0] if row else None


def recreate_database(server_url: str, name: str, progress: Progress) -> str:
    with psycopg.connect(libpq_url(server_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    upgrade(url)
    get_engine(url).dispose()
    progress(f"created database {name} and applied the migrations")
    return url


# Constraint and index names as the migrations create them.
def key_constraints(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of the unique keys on readings and the rollups."""
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " WHERE c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('p', 'u') ORDER BY 1",
        (["readings", *ROLLUP_TABLES],),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _series_table(conn: psycopg.Connection, series: list[Series]) -> None:
    conn.execute(
        """
        CREATE TABLE bench_kpi_series (
            sid int PRIMARY KEY, meter_id text NOT NULL, quantity text NOT NULL, counter boolean NOT NULL,
            model text NOT NULL, base float8, amp float8, peak float8, wstart float8, wlen float8,
            wpeak float8, wsign float8, duty int, "offset" int, loaded float8, unloaded float8,
            scale float8, res float8, e0 float8, noise float8)
        """
    )
    names = [f.name for f in Series.__dataclass_fields__.values()]
    cols = ", ".join(f'"{n}"' for n in names)
    with conn.cursor() as cur, cur.copy(f"COPY bench_kpi_series ({cols}) FROM STDIN") as copy:
        for s in series:
            copy.write_row([getattr(s, n) for n in names])


def _site(conn: psycopg.Connection, meters: list[Meter]) -> None:
    from psycopg.types.json import Jsonb

    conn.execute(
        "INSERT INTO sites (id, name, timezone, grid_region) VALUES (%s, %s, 'Asia/Shanghai', 'north_east')",
        (SITE_ID, "Benchmark plant"))
    for m in meters:
        conn.execute(
            "INSERT INTO meters (id, site_id, name, role, protocol, gateway_id, params)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (m.id, SITE_ID, m.name, m.role, m.protocol, "bench-gw-1", Jsonb(m.params)))


def _minute_rows(k0: int, k1: int, start: datetime) -> str:
    """The chunk [k0, k1) of every series: minute, time, value and, for counters, the pair delta.

    One reading a minute, so every counter reading pairs with the one a minute before (60 s
    covered, no gap); the very first reading of a series has no pair.
    """
    return f"""
        CREATE TEMP TABLE chunk AS
        SELECT sid, meter_id, quantity, k, time, value,
               CASE WHEN counter AND k > 0 THEN value - {counter_sql('k - 1')}
                    WHEN counter THEN 0.0 END AS delta,
               CASE WHEN counter AND k > 0 THEN 60.0 WHEN counter THEN 0.0 END AS covered,
               CASE WHEN counter THEN 0.0 END AS gap_delta
        FROM (SELECT s.*, k, timestamptz '{start.isoformat()}' + k * interval '1 minute' AS time,
                     CASE WHEN s.counter THEN {counter_sql('k')} ELSE {live_sql('k')} END AS value
              FROM bench_kpi_series s CROSS JOIN generate_series({k0}, {k1 - 1}) AS k
              OFFSET 0) s
    """


_COLUMNS = "bucket, meter_id, quantity, count, min, max, avg, first, last, delta, covered, gap_delta"


def _levels(start: datetime) -> list[str]:
    """Each rollup level of the chunk, from the level below, with the refresher's formulas."""
    out = [f"""
        INSERT INTO readings_1m ({_COLUMNS})
        SELECT time, meter_id, quantity, 1, value, value, value, value, value, delta, covered, gap_delta
        FROM chunk ORDER BY k, sid
    """]
    below, key = "chunk", "k"
    for table, width, source in LEVELS[1:]:
        w = int(width.total_seconds() // 60)
        if source == "readings_1m":  # from the chunk's minutes, one reading each
            select = f"""
                SELECT timestamptz '{start.isoformat()}' + ({key} / {w}) * {w} * interval '1 minute',
                       meter_id, quantity, count(*)::int, min(value), max(value), avg(value),
                       (array_agg(value ORDER BY {key}))[1], (array_agg(value ORDER BY {key} DESC))[1],
                       sum(delta), sum(covered), sum(gap_delta)
                FROM chunk GROUP BY {key} / {w}, meter_id, quantity
            """
        else:
            select = f"""
                SELECT date_bin({w} * interval '1 minute', bucket, timestamptz '{start.isoformat()}'),
                       meter_id, quantity, sum(count)::int, min(min), max(max),
                       sum(avg * count) / sum(count),
                       (array_agg(first ORDER BY bucket))[1], (array_agg(last ORDER BY bucket DESC))[1],
                       sum(delta), sum(covered), sum(gap_delta)
                FROM {below} GROUP BY 1, meter_id, quantity
            """
        out.append(f"CREATE TEMP TABLE level_{table} AS SELECT * FROM {table} LIMIT 0")
        out.append(f"INSERT INTO level_{table} ({_COLUMNS}) {select}")
        out.append(f"INSERT INTO {table} ({_COLUMNS}) SELECT {_COLUMNS} FROM level_{table}"
                   " ORDER BY bucket, meter_id, quantity")
        below = f"level_{table}"
    out += ["DROP TABLE chunk"] + [f"DROP TABLE level_{table}" for table, _, _ in LEVELS[1:]]
    return out


def generate(url: str, size: Size, meters: list[Meter], head: str, chunk_days: int,
             progress: Progress) -> dict[str, Any]:
    """Site, meters, every minute reading and the four rollup levels, then keys and statistics."""
    t0 = time.perf_counter()
    series = all_series(meters)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_kpi_generation (params jsonb NOT NULL, started_at timestamptz"
                     " NOT NULL DEFAULT now(), finished_at timestamptz, report jsonb)")
        conn.execute("INSERT INTO bench_kpi_generation (params) VALUES (%s)",
                     (psycopg.types.json.Jsonb(wanted_params(size, head)),))
        _site(conn, meters)
        _series_table(conn, series)
        conn.execute("ANALYZE bench_kpi_series")
        # Loading into tables without their unique keys and building the keys afterwards is several
        # times faster than maintaining five B-trees row by row; the keys come back identical.
        keys = key_constraints(conn)
        for table, name, _ in keys:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET temp_buffers = '512MB'")
        conn.execute("SET synchronous_commit = off")
        rows = 0
        per_minute = len(series)
        total = per_minute * size.minutes
        step = chunk_days * 1440
        progress(f"generating {total:,} readings ({len(series)} series × {size.minutes:,} minutes) and"
                 f" their rollups, {chunk_days} days per statement")
        for k0 in range(0, size.minutes, step):
            k1 = min(k0 + step, size.minutes)
            with conn.transaction():
                conn.execute(_minute_rows(k0, k1, size.start))
                # In time order, as gateways write them: the heap of a real site interleaves series.
                conn.execute("INSERT INTO readings (time, meter_id, quantity, value, quality)"
                             " SELECT time, meter_id, quantity, value, 0 FROM chunk"
                             " ORDER BY k, sid")
                for statement in _levels(size.start):
                    conn.execute(statement)
            rows += per_minute * (k1 - k0)
            elapsed = time.perf_counter() - t0
            progress(f"  day {k1 // 1440:>4}/{size.days}: {rows:,} readings ({rows / elapsed:,.0f}/s,"
                     f" eta {elapsed / rows * (total - rows):,.0f} s)")
        conn.execute("SET maintenance_work_mem = '2GB'")
        for table, name, definition in keys:
            t = time.perf_counter()
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
            progress(f"  built {table}.{name} in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        done = backfill_compressor_hours(conn)
        progress(f"  compressor_1h of {done} compressors from the minute rollups"
                 f" in {time.perf_counter() - t:.0f} s")
        latest.rebuild(conn)  # a writer of readings keeps the last values too (lingtan/core/latest.py)
        for table in ("readings", *ROLLUP_TABLES, "compressor_1h", "sites", "meters"):
            t = time.perf_counter()
            conn.execute(f"VACUUM (ANALYZE) {table}")
            progress(f"  vacuum analyze {table} in {time.perf_counter() - t:.0f} s")
        seconds = time.perf_counter() - t0
        report = {"seconds": round(seconds, 1), "readings": rows, "series": len(series),
                  "database_bytes": database_bytes(conn)}
        conn.execute("UPDATE bench_kpi_generation SET finished_at = now(), report = %s",
                     (psycopg.types.json.Jsonb(report),))
    progress(f"generated in {seconds:,.0f} s")
    return report


def database_bytes(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def table_bytes(conn: psycopg.Connection) -> dict[str, int]:
    return {t: int(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0])
            for t in ("readings", *ROLLUP_TABLES)}


# ---------------------------------------------------------------------------------------------
# is the generated data what the product would have stored?


def verify_rollups(url: str, size: Size, meters: list[Meter]) -> list[Check]:
    """Re-materialise a sample with ``lingtan.core.rollups.refresh_keys`` and compare, then roll back.

    Sample: two counters, a live value and a compressor state, for three hours of the first day
    (the first reading has no predecessor) and three hours around noon (PV, export) of a day in
    the middle; the 15 min, 1 h and 1 day buckets above those minutes come along.
    """
    by_quantity = {(s.meter_id, s.quantity): s for s in all_series(meters)}
    picks = [("grid-01", "active_energy_import"), ("pv-01", "active_energy_export"),
             (meters[-1].id, "active_power"), ("compressor-01", "state")]
    picks = [p for p in picks if p in by_quantity]
    mid = size.days // 2
    ranges = [(size.start, size.start + timedelta(hours=3)),
              (size.start + timedelta(days=mid, hours=10), size.start + timedelta(days=mid, hours=13))]
    keys = {(m, q, lo + timedelta(minutes=i))
            for m, q in picks for lo, hi in ranges for i in range(int((hi - lo).total_seconds() // 60))}
    columns = "count, min, max, avg, first, last, delta, covered, gap_delta"

    def snapshot(conn: psycopg.Connection) -> dict[tuple[str, str, str, datetime], tuple[Any, ...]]:
        """The sampled minutes, the 15 min and 1 h buckets they make up, and their days."""
        out = {}
        for table in ROLLUP_TABLES:
            for m, q in picks:
                for lo, hi in ranges:
                    day = size.start + timedelta(days=(lo - size.start).days)
                    a, b = (day, day + timedelta(days=1)) if table == "readings_1d" else (lo, hi)
                    for row in conn.execute(
                        f"SELECT bucket, {columns} FROM {table} WHERE meter_id = %s AND quantity = %s"
                        " AND bucket >= %s AND bucket < %s", (m, q, a, b)):
                        out[(table, m, q, row[0])] = tuple(row[1:])
        return out

    with psycopg.connect(url) as conn:
        ours = snapshot(conn)
        try:
            refresh_keys(conn, keys)
            theirs = snapshot(conn)
        finally:
            conn.rollback()
    names = columns.split(", ")
    diffs = []
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            diffs.append(f"{key[0]} {key[1]}/{key[2]} {key[3]:%Y-%m-%d %H:%M}: "
                         f"{'missing in generated' if a is None else 'not re-materialised'}")
            continue
        for n, x, y in zip(names, a, b, strict=True):
            if not _close(x, y, 1e-9):
                diffs.append(f"{key[0]} {key[1]}/{key[2]} {key[3]:%Y-%m-%d %H:%M} {n}: generated {x!r},"
                             f" refresh_keys {y!r}")
    detail = (f"{len(ours):,} buckets (4 levels) of {len(picks)} series × {len(ranges)} three-hour"
              " samples equal" if not diffs else f"{len(diffs)} differences, e.g. {'; '.join(diffs[:3])}")
    return [Check("rollups = refresh_keys", not diffs, detail)]


def verify_counts(url: str, size: Size, series: int) -> list[Check]:
    """Every level accounts for every reading (cheap: the day and hour levels)."""
    expected = series * size.minutes
    checks = []
    with psycopg.connect(url) as conn:
        for table in ("readings_1d", "readings_1h"):
            n = int(conn.execute(f"SELECT coalesce(sum(count), 0) FROM {table}").fetchone()[0])
            checks.append(Check(f"{table} counts", n == expected,
                                f"sum(count) {n:,}, expected {expected:,} readings"))
    return checks


def _close(x: Any, y: Any, rel: float) -> bool:
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, float) or isinstance(y, float):
        return abs(x - y) <= rel * max(abs(x), abs(y), 1e-9) or abs(x - y) < 1e-9
    return bool(x == y)


# ---------------------------------------------------------------------------------------------
# the raw-row baselines: the same figures straight from `readings`

# Increase of each counter over [a, b) from raw readings: every pair of consecutive readings whose
# later reading is in the window, the reading before the window included (as the rollups
# attribute a pair to the bucket of its later reading). Pairs further apart than COVER_GAP_S, or
# where the counter went down (reset: it restarted from 0, so the later value is the increase),
# go to `gap`. `grp` labels the series; `raw_series` groups them by hour as well. These are simpler
# rules than lingtan.core.energy's (no spike, rollover or backward-step handling): on the generated
# data, which has none of those, both must give the same figures.
_RAW_INCREASE = """
SELECT s.grp, {bucket_out} coalesce(sum(x.inc) FILTER (WHERE NOT x.gap), 0),
       coalesce(sum(x.inc) FILTER (WHERE x.gap), 0), coalesce(sum(x.dt) FILTER (WHERE NOT x.gap), 0)
FROM unnest(CAST(:meters AS text[]), CAST(:quantities AS text[]), CAST(:groups AS text[]))
     AS s(meter_id, quantity, grp)
CROSS JOIN LATERAL (
    SELECT y.time, y.dt, y.dt > {gap} OR y.value < y.prev AS gap,
           CASE WHEN y.value >= y.prev THEN y.value - y.prev ELSE y.value END AS inc
    FROM (SELECT r.time, r.value, lag(r.value) OVER w AS prev,
                 extract(epoch FROM r.time - lag(r.time) OVER w) AS dt
          FROM readings r
          WHERE r.meter_id = s.meter_id AND r.quantity = s.quantity AND r.time < :b
            AND r.time >= coalesce((SELECT max(p.time) FROM readings p WHERE p.meter_id = s.meter_id
                                    AND p.quantity = s.quantity AND p.time < :a), :a)
          WINDOW w AS (ORDER BY r.time)) y
    WHERE y.prev IS NOT NULL
) x
GROUP BY s.grp {bucket_group}
"""

# Compressor air, loaded power and loaded flow from raw readings: a minute's flow reading in
# m³/min is the air of that minute; "loaded throughout" is a state reading of 2 in that minute.
_RAW_AIR = """
SELECT f.meter_id, sum(f.value),
       avg(p.value) FILTER (WHERE st.value = 2), avg(f.value) FILTER (WHERE st.value = 2)
FROM readings f
LEFT JOIN readings p ON p.meter_id = f.meter_id AND p.quantity = 'active_power' AND p.time = f.time
LEFT JOIN readings st ON st.meter_id = f.meter_id AND st.quantity = 'state' AND st.time = f.time
WHERE f.meter_id = ANY(CAST(:meters AS text[])) AND f.quantity = 'air_flow'
  AND f.time >= :a AND f.time < :b
GROUP BY f.meter_id
"""


@dataclass
class Part:
    """A group of counter series whose increases add up to one figure."""

    name: str
    quantity: str
    meters: list[str]


def kpi_parts(meters: list[Meter]) -> list[Part]:
    """The counter figures of the 30-day KPIs, as the engine groups them (amounts.gather)."""
    role = lambda r: [m.id for m in meters if m.role == r]  # noqa: E731
    parts = [Part("grid_import_kwh", "active_energy_import", role("grid_import")),
             Part("grid_export_kwh", "active_energy_export", role("grid_import") + role("grid_export")),
             Part("pv_kwh", "active_energy_export", role("pv_generation")),
             Part("gas_m3", "gas_volume", role("boiler_fuel")),
             Part("steam_t", "steam_mass", role("boiler_fuel")),
             Part("recovered_heat_gj", "heat_energy", role("heat_recovery")),
             Part("production", "production_count", role("production"))]
    for c in role("compressor"):
        parts += [Part(f"{c}/energy_kwh", "active_energy_import", [c]),
                  Part(f"{c}/running_h", "running_hours", [c]), Part(f"{c}/loaded_h", "loaded_hours", [c])]
    # Every other counter of the site, so the raw side reads what a whole-site KPI call covers.
    return [*parts, Part("load_kwh", "active_energy_import", role("load"))]


SERIES_PARTS = ("grid_import_kwh", "grid_export_kwh", "pv_kwh", "gas_m3", "production")


def _part_args(parts: list[Part]) -> dict[str, list[str]]:
    rows = [(m, p.quantity, p.name) for p in parts for m in p.meters]
    return {"meters": [r[0] for r in rows], "quantities": [r[1] for r in rows],
            "groups": [r[2] for r in rows]}


@dataclass
class RawKpis:
    parts: dict[str, tuple[float, float, float]]  # name -> (delta, gap, covered seconds)
    air: dict[str, tuple[float | None, float | None, float | None]]

    def value(self, name: str) -> float:
        delta, gap, _ = self.parts.get(name, (0.0, 0.0, 0.0))
        return delta + gap


def raw_kpis(conn: Any, parts: list[Part], compressors: list[str], a: datetime, b: datetime) -> RawKpis:

    rows = conn.execute(sa.text(_RAW_INCREASE.format(bucket_out="", bucket_group="", gap=COVER_GAP_S)),
                        {**_part_args(parts), "a": a, "b": b}).all()
    air = {}
    if compressors:
        air = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(
            sa.text(_RAW_AIR), {"meters": compressors, "a": a, "b": b})}
    return RawKpis({r[0]: (float(r[1]), float(r[2]), float(r[3])) for r in rows}, air)


def raw_series(conn: Any, parts: list[Part], a: datetime, b: datetime
               ) -> dict[datetime, dict[str, float]]:
    """Hour -> figure -> increase placed in that hour, from raw readings."""

    sql = _RAW_INCREASE.format(
        bucket_out="date_bin(interval '1 hour', x.time, CAST(:origin AS timestamptz)),",
        bucket_group=", 2", gap=COVER_GAP_S)
    out: dict[datetime, dict[str, float]] = {}
    for grp, hour, delta, gap, _ in conn.execute(
            sa.text(sql), {**_part_args(parts), "a": a, "b": b, "origin": a}):
        # A bucket's figures hold the energy placed in it; what a gap carried is reported apart.
        out.setdefault(hour, {})[grp] = float(delta)
        if gap:
            out[hour][f"{grp}/gap"] = float(gap)
    return out


# ---------------------------------------------------------------------------------------------
# the rollup side: the KPI engine when it is there, else the counter-energy service, else SQL


_ROLLUP_TOTALS = """
SELECT s.grp, coalesce(sum(r.delta), 0), coalesce(sum(r.gap_delta), 0), coalesce(sum(r.covered), 0)
FROM unnest(CAST(:meters AS text[]), CAST(:quantities AS text[]), CAST(:groups AS text[]))
     AS s(meter_id, quantity, grp)
JOIN readings_1d r ON r.meter_id = s.meter_id AND r.quantity = s.quantity
WHERE r.bucket >= :a AND r.bucket < :b
GROUP BY s.grp
"""

_ROLLUP_HOURLY = """
SELECT s.grp, r.bucket, sum(r.delta)
FROM unnest(CAST(:meters AS text[]), CAST(:quantities AS text[]), CAST(:groups AS text[]))
     AS s(meter_id, quantity, grp)
JOIN readings_1h r ON r.meter_id = s.meter_id AND r.quantity = s.quantity
WHERE r.bucket >= :a AND r.bucket < :b
GROUP BY 1, 2
"""


@dataclass
class Call:
    """What is timed on the rollup side, and how its answer is turned into comparable figures."""

    path: str
    run: Callable[[Any], Any]
    figures: Callable[[Any], Any]
    partial: bool = False  # a fallback answers only the counter figures, not the compressor ones


def _attr(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _value(x: Any) -> float | None:
    """A Figure's value, or a plain number."""
    x = getattr(x, "value", x)
    return None if x is None else float(x)


# window_kpis result → the counter figures the raw side computes (attribute paths).
_KPI_FIELDS = {
    "grid_import_kwh": "electricity.grid_import_kwh",
    "grid_export_kwh": "electricity.grid_export_kwh",
    "pv_kwh": "electricity.pv_generation_kwh",
    "consumption_kwh": "electricity.consumption_kwh",
    "recovered_heat_gj": "waste_heat.recovered_gj",
    "production": "energy.production",
}


def kpi_call(site: str, parts: list[Part], a: datetime, b: datetime) -> Call:
    try:
        from lingtan.core.kpi import window_kpis
    except ImportError:
        window_kpis = None
    if window_kpis is not None:
        def figures(k: Any) -> dict[str, float | None]:
            out = {name: _value(_attr(k, path)) for name, path in _KPI_FIELDS.items()}
            for boiler in k.boilers:
                out["gas_m3"] = _value(boiler.fuel_m3)
                out["steam_t"] = _value(boiler.steam_t)
            for c in k.compressors:
                out[f"{c.meter_id}/energy_kwh"] = _value(c.energy_kwh)
                out[f"{c.meter_id}/air_m3"] = _value(c.air_m3)
                out[f"{c.meter_id}/load_ratio"] = _value(c.load_ratio)
                out[f"{c.meter_id}/specific_power_loaded"] = _value(c.specific_power_loaded)
            return out
        return Call("lingtan.core.kpi.window_kpis", lambda conn: window_kpis(conn, site, a, b), figures)

    wanted = [p for p in parts if p.name != "load_kwh"]
    try:
        from lingtan.core.counters import counter_energy
    except ImportError:
        counter_energy = None
    if counter_energy is not None:
        def run(conn: Any) -> dict[str, float]:
            return {p.name: (e := counter_energy(conn, p.meters, p.quantity, a, b)).value + e.gap_value
                    for p in wanted if p.meters}
        return Call("lingtan.core.counters.counter_energy per figure", run, _with_consumption, partial=True)

    def run_sql(conn: Any) -> dict[str, float]:

        rows = conn.execute(sa.text(_ROLLUP_TOTALS), {**_part_args(wanted), "a": a, "b": b})
        return {r[0]: float(r[1]) + float(r[2]) for r in rows}
    return Call("SQL: sum(delta + gap_delta) over readings_1d", run_sql, _with_consumption, partial=True)


def _with_consumption(f: dict[str, float]) -> dict[str, float | None]:
    out: dict[str, float | None] = dict(f)
    out["consumption_kwh"] = (f.get("grid_import_kwh", 0.0) - f.get("grid_export_kwh", 0.0)
                              + f.get("pv_kwh", 0.0))
    return out


def raw_kpi_figures(raw: RawKpis, compressors: list[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        name: raw.value(name) for name in ("grid_import_kwh", "grid_export_kwh", "pv_kwh", "gas_m3",
                                           "steam_t", "recovered_heat_gj", "production")}
    out = _with_consumption({k: v for k, v in out.items() if v is not None})
    for c in compressors:
        air, kw, flow = raw.air.get(c, (None, None, None))
        running, loaded = raw.value(f"{c}/running_h"), raw.value(f"{c}/loaded_h")
        out[f"{c}/energy_kwh"] = raw.value(f"{c}/energy_kwh")
        out[f"{c}/air_m3"] = air
        out[f"{c}/load_ratio"] = loaded / running if running > 0 else None
        out[f"{c}/specific_power_loaded"] = kw / flow if kw and flow else None
    return out


_POINT_FIELDS = ("grid_import_kwh", "grid_export_kwh", "pv_kwh", "consumption_kwh", "gas_m3", "production")


def series_call(site: str, parts: list[Part], a: datetime, b: datetime) -> Call:
    try:
        from lingtan.core.series import kpi_series
    except ImportError:
        try:
            from lingtan.core.kpi import kpi_series  # type: ignore[no-redef]
        except ImportError:
            kpi_series = None
    if kpi_series is not None:
        def figures(s: Any) -> dict[datetime, dict[str, float | None]]:
            return {p.time: {f: _value(getattr(p, f)) for f in _POINT_FIELDS} for p in s.points}
        return Call("lingtan.core.series.kpi_series(resolution='1h')",
                    lambda conn: kpi_series(conn, site, a, b, "1h"), figures)

    wanted = [p for p in parts if p.name in SERIES_PARTS]
    try:
        from lingtan.core.counters import counter_series
    except ImportError:
        counter_series = None
    if counter_series is not None:
        def run(conn: Any) -> dict[datetime, dict[str, float]]:
            out: dict[datetime, dict[str, float]] = {}
            for p in wanted:
                for row in counter_series(conn, p.meters, p.quantity, a, b, "1h"):
                    out.setdefault(row[0], {}).setdefault(p.name, 0.0)
                    out[row[0]][p.name] += row[1]
            return out
        return Call("lingtan.core.counters.counter_series per figure", run, _series_with_consumption)

    def run_sql(conn: Any) -> dict[datetime, dict[str, float]]:

        out: dict[datetime, dict[str, float]] = {}
        rows = conn.execute(sa.text(_ROLLUP_HOURLY), {**_part_args(wanted), "a": a, "b": b})
        for grp, bucket, delta in rows:
            out.setdefault(bucket, {})[grp] = float(delta)
        return out
    return Call("SQL: sum(delta) over readings_1h", run_sql, _series_with_consumption)


def _series_with_consumption(s: dict[datetime, dict[str, float]]) -> dict[datetime, dict[str, float | None]]:
    return {t: {**{n: f.get(n, 0.0) for n in SERIES_PARTS}, "consumption_kwh": _with_consumption(f)[
        "consumption_kwh"]} for t, f in s.items()}


def raw_series_figures(raw: dict[datetime, dict[str, float]]) -> dict[datetime, dict[str, float | None]]:
    return {t: {f: v for f, v in vals.items() if f in _POINT_FIELDS}
            for t, vals in _series_with_consumption(raw).items()}


def compare_figures(name: str, rollup: dict[str, float | None], raw: dict[str, float | None],
                    rel: float) -> Check:
    diffs = [f"{k}: rollups {rollup.get(k)!r}, raw {raw[k]!r}" for k in sorted(raw)
             if k not in rollup or not _close(rollup[k], raw[k], rel)]
    return Check(name, not diffs, f"{len(raw)} figures equal within {rel:g} relative" if not diffs
                 else f"{len(diffs)} of {len(raw)} differ: {'; '.join(diffs[:4])}")


def compare_series(name: str, rollup: dict[datetime, dict[str, float | None]],
                   raw: dict[datetime, dict[str, float | None]], rel: float) -> Check:
    diffs = []
    for t in sorted(set(rollup) | set(raw)):
        got, want = rollup.get(t), raw.get(t)
        if got is None or want is None:
            # A bucket without data is a gap on one side only if the other has energy in it.
            if any(v for v in (got or want or {}).values()):
                diffs.append(f"{t:%Y-%m-%d %H:%M}: only in {'raw' if got is None else 'rollups'}")
            continue
        diffs += [f"{t:%Y-%m-%d %H:%M} {k}: rollups {got.get(k)!r}, raw {v!r}" for k, v in want.items()
                  if not _close(got.get(k), v, rel)]
    points = sum(1 for t in raw if t in rollup)
    return Check(name, not diffs, f"{points:,} points × {len(_POINT_FIELDS)} figures equal within {rel:g}"
                 " relative" if not diffs else f"{len(diffs)} differences: {'; '.join(diffs[:4])}")


# ---------------------------------------------------------------------------------------------
# timing and the report


@dataclass
class Timing:
    label: str
    path: str
    runs: int
    ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "runs": self.runs, "p50_ms": round(self.p50, 2),
                "p95_ms": round(self.p95, 2), "max_ms": round(max(self.ms), 2),
                "ms": [round(x, 2) for x in self.ms]}


def timed(conn: Any, label: str, path: str, fn: Callable[[Any], Any], runs: int, warmup: int,
          progress: Progress) -> tuple[Timing, Any]:
    """``warmup`` untimed calls, then ``runs`` timed ones on the same connection, each in its
    own transaction, as an API request would make them."""
    result = None
    for _ in range(warmup):
        result = fn(conn)
        conn.rollback()
    ms = []
    for i in range(runs):
        t = time.perf_counter()
        result = fn(conn)
        ms.append((time.perf_counter() - t) * 1000)
        conn.rollback()
        if runs >= 5 and (i + 1) % max(1, runs // 5) == 0:
            progress(f"  {label}: {i + 1}/{runs} runs, last {ms[-1]:,.1f} ms")
    return Timing(label, path, runs, ms), result


def statement_profile(engine: Any, conn: Any, fn: Callable[[Any], Any], top: int = 5
                      ) -> list[dict[str, Any]]:
    """One more (untimed) call with every SQL statement timed: where the call's time goes."""
    from sqlalchemy import event

    stats: dict[str, list[float]] = {}
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        key = " ".join(statement.split())
        entry = stats.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += (time.perf_counter() - started.pop()) * 1000

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        t = time.perf_counter()
        fn(conn)
        total = (time.perf_counter() - t) * 1000
        conn.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    ordered = sorted(stats.items(), key=lambda kv: -kv[1][1])
    out = [{"statement": k, "calls": int(n), "ms": round(ms, 1)} for k, (n, ms) in ordered[:top]]
    sql_ms = sum(ms for _, ms in stats.values())
    out.append({"statement": f"(all {sum(int(n) for n, _ in stats.values())} statements; the call took"
                f" {total:,.1f} ms, {total - sql_ms:,.1f} ms of it outside SQL)", "calls": 0,
                "ms": round(sql_ms, 1)})
    return out


def environment(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        settings = dict(conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (["shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather",
              "jit", "random_page_cost"],),
        ).fetchall())
        return {
            "postgresql": conn.info.parameter_status("server_version"),
            "server_settings": settings,
            "python": platform.python_version(),
            "psycopg": psycopg.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "database_bytes": database_bytes(conn),
            "table_bytes": table_bytes(conn),
        }


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def render(config: dict[str, Any], env: dict[str, Any], generation: dict[str, Any],
           timings: list[tuple[Timing, Timing]], profiles: dict[str, list[dict[str, Any]]],
           checks: list[Check]) -> str:
    reused = "reused" if generation.get("reused") else "generated now"
    lines = [
        "",
        f"Lingtan KPI benchmark: site {SITE_ID}, {config['meters']} meters ({config['series']} series),"
        f" {config['days']} days of 1-minute readings, {config['start']} – {config['end']}",
        f"database {config['database']}: {_gb(env['database_bytes'])}, {generation['readings']:,} readings"
        f" ({reused}; generation took {generation['seconds']:,.0f} s)",
        "  " + ", ".join(f"{t} {_gb(n)}" for t, n in env["table_bytes"].items()),
        f"PostgreSQL {env['postgresql']} (shared_buffers {env['server_settings'].get('shared_buffers')},"
        f" work_mem {env['server_settings'].get('work_mem')}), Python {env['python']}, {env['cpus']} CPUs",
        "",
        f"{'call':<44}{'runs':>6}{'p50 ms':>11}{'p95 ms':>11}{'raw/rollup p95':>16}",
        "-" * 88,
    ]
    for rollup, raw in timings:
        ratio = raw.p95 / rollup.p95 if rollup.p95 > 0 else float("inf")
        lines += [
            f"{rollup.label}",
            f"{'  rollups: ' + rollup.path:<44.44}{rollup.runs:>6}{rollup.p50:>11,.1f}{rollup.p95:>11,.1f}"
            f"{ratio:>15,.0f}×",
            f"{'  raw readings (baseline)':<44}{raw.runs:>6}{raw.p50:>11,.1f}{raw.p95:>11,.1f}",
        ]
    lines += ["", f"target: p95 from rollups < {TARGET_MS:.0f} ms"]
    for rollup, _ in timings:
        verdict = "PASS" if rollup.p95 < TARGET_MS else "MISS"
        lines.append(f"  {rollup.label:<42}{rollup.p95:>9,.1f} ms  {verdict}")
    lines += ["", "rollup side: " + "; ".join(f"{r.label} → {r.path}" for r, _ in timings)]
    for label, rows in profiles.items():
        lines += ["", f"where the time of one rollup call goes: {label}"]
        lines += [f"  {r['ms']:>9,.1f} ms {r['calls']:>4}× {r['statement'][:90]}" if r["calls"]
                  else f"  {r['ms']:>9,.1f} ms       {r['statement']}" for r in rows]
    lines += ["", "correctness"]
    for c in checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.name:<34} {c.detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.kpi", description=__doc__.split("\n")[0])
    p.add_argument("--meters", type=int, default=100, help="meters of the site (≥ 10)")
    p.add_argument("--days", type=int, default=365, help="days of 1-minute data")
    p.add_argument("--dsn", "--database-url", dest="dsn",
                   default=os.environ.get("LINGTAN_BENCH_DATABASE_URL", DEFAULT_URL),
                   help="server (any database on it; default: $LINGTAN_BENCH_DATABASE_URL or %(default)s)")
    p.add_argument("--database", default=None,
                   help=f"database to generate into and keep (default: {DEFAULT_DATABASE} for the default"
                        f" size, {DEFAULT_DATABASE}_<meters>m_<days>d for others, so a quick check never"
                        " replaces the full-size data)")
    p.add_argument("--regenerate", action="store_true",
                   help="drop and generate the database even when it holds the requested size")
    p.add_argument("--runs", type=int, default=50,
                   help="timed 30-day KPI calls from rollups (default: %(default)s)")
    p.add_argument("--series-runs", type=int, default=20,
                   help="timed one-year series calls from rollups (default: %(default)s)")
    p.add_argument("--raw-runs", type=int, default=5,
                   help="timed calls of each raw-row baseline (default: %(default)s; each takes"
                        " half a minute at full size)")
    p.add_argument("--kpi-days", type=int, default=30, help="KPI window, ending with the data")
    p.add_argument("--chunk-days", type=int, default=5, help="days generated per SQL statement")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    if args.meters < 10:
        p.error("--meters must be at least 10 (nine fixed roles and a load)")
    if args.database is None:
        default_size = (p.get_default("meters"), p.get_default("days"))
        args.database = (DEFAULT_DATABASE if (args.meters, args.days) == default_size
                         else f"{DEFAULT_DATABASE}_{args.meters}m_{args.days}d")
    for name in ("days", "runs", "series_runs", "raw_runs", "kpi_days", "chunk_days"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    size = Size(args.meters, args.days, END)
    meters = layout(args.meters)
    series = all_series(meters)
    url = _with_database(args.dsn, args.database)
    head = migration_head(url)
    wanted = wanted_params(size, head)
    stored = None if args.regenerate else stored_params(url)
    if stored is not None and stored != wanted and {**stored, "migration": head} == wanted:
        # Same data, older schema: the migrations bring a real installation's rollups along,
        # so they can bring this one (and a run proves they do, at this size).
        progress(f"{args.database} is at migration {stored['migration']}: upgrading it to {head}")
        t = time.perf_counter()
        upgrade(url)
        get_engine(url).dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) compressor_1h")
            conn.execute("UPDATE bench_kpi_generation SET params = %s,"
                         " report = report || jsonb_build_object('upgraded_from', %s::text,"
                         " 'upgrade_seconds', %s::float8)",
                         (psycopg.types.json.Jsonb(wanted), stored["migration"],
                          round(time.perf_counter() - t, 1)))
        progress(f"upgraded in {time.perf_counter() - t:,.0f} s")
        stored = wanted
    if stored == wanted:
        with psycopg.connect(url) as conn:
            generation = {**conn.execute("SELECT report FROM bench_kpi_generation").fetchone()[0],
                          "reused": True}
        progress(f"reusing {args.database}: it holds {args.meters} meters × {args.days} days")
    else:
        if stored is not None:
            progress(f"{args.database} holds {stored}, not {wanted}: generating again")
        url = recreate_database(args.dsn, args.database, progress)
        generation = generate(url, size, meters, head, args.chunk_days, progress)
    env = environment(url)
    config = {"meters": args.meters, "days": args.days, "series": len(series), "database": args.database,
              "start": size.start.isoformat(), "end": size.end.isoformat(), "kpi_days": args.kpi_days,
              "server": _redact(args.dsn), "runs": args.runs, "series_runs": args.series_runs,
              "raw_runs": args.raw_runs,
              "code": {f: _file_version(f) for f in ("lingtan/core/rollups.py", "lingtan/core/counters.py",
                                                      "lingtan/core/amounts.py", "lingtan/core/kpi.py",
                                                      "lingtan/core/series.py",
                                                      "lingtan/core/series_cache.py")}}

    progress("checking the generated rollups against lingtan.core.rollups.refresh_keys on a sample")
    checks = verify_counts(url, size, len(series)) + verify_rollups(url, size, meters)

    parts = kpi_parts(meters)
    compressors = [m.id for m in meters if m.role == "compressor"]
    kpi_end = size.end
    kpi_start = kpi_end - timedelta(days=min(args.kpi_days, args.days))
    kpi = kpi_call(SITE_ID, parts, kpi_start, kpi_end)
    ser = series_call(SITE_ID, parts, size.start, size.end)
    series_parts = [p for p in parts if p.name in SERIES_PARTS]
    engine = get_engine(url)
    timings = []
    cold_ms = float("nan")
    profiles: dict[str, list[dict[str, Any]]] = {}
    try:
        with engine.connect() as conn:
            label = f"{min(args.kpi_days, args.days)}-day KPIs, all meters"
            progress(f"{label}: rollups via {kpi.path}")
            roll, answer = timed(conn, label, kpi.path, kpi.run, args.runs, 3, progress)
            profiles[label] = statement_profile(engine, conn, kpi.run)
            progress(f"{label}: raw readings")
            raw, raw_answer = timed(conn, label, "raw readings", lambda c: raw_kpis(
                c, parts, compressors, kpi_start, kpi_end), args.raw_runs, 1, progress)
            timings.append((roll, raw))
            got, want = kpi.figures(answer), raw_kpi_figures(raw_answer, compressors)
            if kpi.partial:
                want = {k: v for k, v in want.items() if k in got}
            checks.append(compare_figures(f"{label}: rollups = raw", got, want, 1e-6))

            label = f"{args.days}-day hourly consumption series"
            # The first call after the series cache is emptied fills it from the rollups (what a
            # new site, or the first request after an upgrade, pays once); the timed calls after
            # the warm-up read it, plus the buckets that are not complete yet.
            conn.execute(sa.text("DELETE FROM series_cache"))
            conn.commit()
            t = time.perf_counter()
            ser.run(conn)
            cold_ms = (time.perf_counter() - t) * 1000
            conn.rollback()
            progress(f"{label}: first call, empty series cache (fills it): {cold_ms:,.1f} ms")
            progress(f"{label}: rollups via {ser.path}")
            roll, answer = timed(conn, label, ser.path, ser.run, args.series_runs, 2, progress)
            profiles[label] = statement_profile(engine, conn, ser.run)
            progress(f"{label}: raw readings")
            raw, raw_answer = timed(conn, label, "raw readings", lambda c: raw_series(
                c, series_parts, size.start, size.end), args.raw_runs, 1, progress)
            timings.append((roll, raw))
            checks.append(compare_series(f"{label}: rollups = raw", ser.figures(answer),
                                         raw_series_figures(raw_answer), 1e-6))
    finally:
        engine.dispose()

    ok = all(c.ok for c in checks)
    print(render(config, env, generation, timings, profiles, checks))
    result = {
        "benchmark": "kpi",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config, "environment": env, "generation": generation,
        "timings": [{"call": r.label, "rollups": r.as_dict(), "raw": w.as_dict(),
                     "ratio_raw_to_rollups_p95": w.p95 / r.p95 if r.p95 else None,
                     "target_met": r.p95 < TARGET_MS} for r, w in timings],
        "target_ms": TARGET_MS,
        "series_first_call_empty_cache_ms": round(cold_ms, 1),
        "statements": profiles,
        "checks": [asdict(c) for c in checks],
        "correct": ok,
    }
    return finish(args.output, result, ok)


def _file_version(path: str) -> str:
    """The last commit of a file, whether the working copy differs, and a hash of what ran."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        digest = hashlib.sha256((root / path).read_bytes()).hexdigest()[:12]
    except OSError:
        return "absent"
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", path], cwd=root,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", path], cwd=root).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return f"sha256 {digest}"
    state = "not committed" if not commit else f"{commit}{' + uncommitted changes' if dirty else ''}"
    return f"{state}, sha256 {digest}"


if __name__ == "__main__":
    sys.exit(main())
