"""Zero-carbon programme latency: targets, net balance, evaluations and the PDF report against window_kpis.

Every figure of the programme is computed with the one KPI engine, so its calls are measured against
one year of that engine for the same site, in the same run.

Run:  .venv/bin/python -m benchmarks.programme [--years 3] [--meters 10] [--dsn URL] [--runs N]

One site (Asia/Shanghai, grid region north_east) with the meters of ``benchmarks/kpi.py``'s layout —
two grid incomers (import and export counters), four PV inverters, a gas boiler with a steam meter,
a heat-recovery loop, a production counter and sub-meters — and ``structure.py``'s four-band
time-of-use tariff (``--tariff flat``: its flat price alone), metered for ``--years`` full calendar
years and the January after them (the data ends at a fixed China midnight, 2026-02-01, whatever the
date of the run, which is also the "now" of every call). The readings follow ``kpi.py``'s closed
forms and are aggregated in SQL, with ``kpi.py``'s own statements, straight into the 15-minute, hour
and day rollups (the levels the engine reads for windows that start and end at local midnights); no
raw readings or minute rollups are stored. The database (``lingtan_bench_programme``, or
``lingtan_bench_programme_<M>m_<Y>y`` for other sizes) is kept and reused by later runs with the
same parameters.

The programme is written by every run (``import_site_file``, as ``lingtan site import`` does): the
base year entered as history two years before metering began, the year after it entered too, four
targets, offsets retired for the metered years, green certificates and a green-power trade for the
last full year, and the evaluations (zero-carbon factory checklist, green factory indicators and a
cloud-model grade over the last 12 months). The entered years are sized from the first metered year.

Timed, on one connection, each call in its own transaction, after a warm-up, in interleaved rounds
(one call of each per round, so all of them see the same machine):

1. the baseline: ``kpi.window_kpis`` for the last full year;
2. ``programme_service.targets``; ``programme_service.neutrality`` and ``programme_service.evaluate``
   for the last full year;
3. the annual report as the API makes it: ``programme_report.zero_carbon_report``, ``report_tables``
   and ``report_formats.render(..., "pdf")`` in Chinese.

p50 and p95 and each call's ratio to the baseline are printed and written to
``benchmarks/results/programme.json``. The exit status is non-zero only when a correctness check
fails (the net balance's gross differs from ``window_kpis``' Scope 1 + 2 market-based for the year,
the engine's year differs from the generator's closed form, ...), never because a call is slow.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from benchmarks.kpi import (
    CST,
    Meter,
    Size,
    Timing,
    _close,
    _file_version,
    _levels,
    _minute_rows,
    _redact,
    _series_table,
    _with_database,
    all_series,
    counter_sql,
    database_bytes,
    key_constraints,
    layout,
    migration_head,
    recreate_database,
    statement_profile,
    stored_params,
    verify_counts,
)
from benchmarks.report import Check, Progress, finish
from benchmarks.structure import TARIFF
from lingtan.kernel.db import get_engine
from lingtan.kernel.migrate import upgrade

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASE = "lingtan_bench_programme"
DEFAULT_SIZE = (10, 3)  # meters, full metered years: the size kept as DEFAULT_DATABASE
RESULTS = Path(__file__).resolve().parent / "results" / "programme.json"

# The data ends, and every call's "now" is, this China midnight whatever the date of the run: the
# last full year is 2025, and January 2026 is the running year so far (whole days, so the engine
# reads day rollups only and the minute levels this benchmark does not store are never asked for).
NOW = datetime(2026, 2, 1, tzinfo=CST)
LAST_FULL_YEAR = NOW.year - 1
SITE_ID = "bench-programme"
# Bump when the generated data or the site's meters change: another version is rebuilt.
GENERATOR_VERSION = 1
TABLES = ("readings_15m", "readings_1h", "readings_1d")
GENERATION_TABLE = "bench_programme_generation"
# The library's grid factors start with data year 2021 (docs/domain.md): the base year, two years
# before metering began, must not be earlier.
MAX_YEARS = NOW.year - 1 - 2021 - 1


# ---------------------------------------------------------------------------------------------
# the site and its programme


def site_meters(meters: int) -> list[Meter]:
    """``kpi.layout`` without compressors: their figures come from minute rollups, which are not
    generated here (below 15 meters the layout has none anyway)."""
    return [m for m in layout(meters) if m.role != "compressor"]


def local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=CST)


def metered_start(years: int) -> datetime:
    return local_midnight(date(LAST_FULL_YEAR - years + 1, 1, 1))


def site_document(meters: list[Meter], years: int, sizing: dict[str, float] | None, tou: bool = True
                  ) -> dict[str, Any]:
    """The site file: site, tariff (``structure.py``'s four time-of-use bands, or its flat price),
    meters and the last full year's green power; with ``sizing`` (the first metered year's amounts)
    also the programme, targets, offsets and evaluations."""
    first = LAST_FULL_YEAR - years + 1
    base = first - 2
    doc: dict[str, Any] = {
        "site": {"id": SITE_ID, "name": "Programme benchmark plant", "timezone": "Asia/Shanghai",
                 "grid_region": "north_east"},
        "energy": {"tariff": TARIFF if tou else {"flat_cny_per_kwh": TARIFF["flat_cny_per_kwh"]},
                   "production_unit": "pcs", "gas_price_cny_per_m3": 3.6},
        "meters": [{"id": m.id, "name": m.name, "role": m.role, "params": m.params} for m in meters],
        "green_power": [
            {"kind": "gec", "period_start": date(LAST_FULL_YEAR, 1, 1), "period_end": date(NOW.year, 1, 1),
             "certificates": 5000, "reference": f"GEC cancellation {LAST_FULL_YEAR}"},
            {"kind": "trade", "period_start": date(LAST_FULL_YEAR, 1, 1), "period_end": date(NOW.year, 1, 1),
             "kwh": 8_000_000, "reference": f"green-power trade settlement {LAST_FULL_YEAR}"}],
    }
    if sizing is None:
        return doc

    def entered(year: int, scale: float, **extra: Any) -> dict[str, Any]:
        return {"year": year, "electricity_bought_kwh": round(sizing["grid_import_kwh"] * scale),
                "electricity_exported_kwh": round(sizing["grid_export_kwh"] * scale),
                "pv_generation_kwh": round(sizing["pv_kwh"] * 0.8),
                "fuels": [{"carrier": "natural_gas", "amount": round(sizing["gas_m3"] * scale),
                           "unit": "Nm3"},  # the gas meters count m³ at the NCV's 0 °C
                          {"carrier": "diesel", "amount": 60, "unit": "t"}],  # forklifts, since electric
                "production": round(sizing["production"] * 0.98),
                "output_value_wan_cny": round(sizing["production"] * 0.98 * OUTPUT_WAN_CNY_PER_UNIT),
                "evidence": f"{year} 能源利用状况报告 (energy utilisation report)", **extra}

    def output_value(**period: Any) -> dict[str, Any]:
        share = (1 / 12) if "month" in period else 1.0
        return {**period, "value_wan_cny": round(sizing["production"] * share * OUTPUT_WAN_CNY_PER_UNIT),
                "evidence": f"统计月报/年报 {next(iter(period.values()))}"}

    # Grade intervals of the per-unit indicators around the first metered year's values.
    tce_u, co2_u = sizing["tce_per_unit"], sizing["carbon_per_unit"]
    co2_value = co2_u / 1000 / OUTPUT_WAN_CNY_PER_UNIT  # tCO2e per 10⁴ CNY

    def around(v: float) -> list[list[float | None]]:
        edges = [None, 0.8 * v, 0.95 * v, 1.05 * v, 1.2 * v, None]
        return [[lo, hi] for lo, hi in itertools.pairwise(edges)]

    offsets = []
    serial = {kind: 1 for kind, _ in OFFSETS}
    for year in range(first, LAST_FULL_YEAR + 1):
        for kind, tonnes in OFFSETS:
            prefix, lo = ("CCER-LN-" if kind == "ccer" else "FS-LN-"), serial[kind]
            serial[kind] += tonnes
            offsets.append({
                "id": f"{kind}-{year}", "type": kind, "project": f"illustrative {kind} project",
                "registry": "CCER registry", "vintage": year, "quantity_t": tonnes,
                "serial_from": f"{prefix}{lo:07d}", "serial_to": f"{prefix}{lo + tonnes - 1:07d}",
                "retired_on": date(year + 1, 3, 20), "reference": f"retirement certificate {kind} {year}",
                "period": year})
    return {
        **doc,
        "programme": {
            "base_year": base, "floor_area_m2": 42000, "neutrality_rule": "iso14068_market",
            "history": [entered(base, 1.12),
                        entered(base + 1, 1.06, green_certificates=2000, note="PV phase 2 in the autumn")],
            "output_value": [output_value(year=y) for y in range(first, LAST_FULL_YEAR + 1)]
            + [output_value(month=f"{NOW.year}-01")],
        },
        "targets": [
            {"id": "emissions-2030", "name": "Scope 1 + 2 (market) 30 % below the base year by 2030",
             "kind": "emissions", "basis": "market", "reduction": 0.3, "target_year": 2030},
            {"id": "green-power-2028", "name": "Green-power share 50 % by 2028", "kind": "green_power_share",
             "value": 0.5, "target_year": 2028},
            {"id": "intensity-2030", "name": "Carbon per unit of product 35 % below the base year by 2030",
             "kind": "intensity", "per": "product", "reduction": 0.35, "target_year": 2030},
            {"id": "energy-per-unit-2027", "name": "Energy per unit 15 % below the base year by 2027",
             "kind": "energy_per_unit", "reduction": 0.15, "target_year": 2027},
        ],
        "offsets": offsets,
        "evaluations": {
            "zero_carbon": {"type": "I", "checklist": [
                {"pathway": "carbon accounting", "item": "Scope 1 + 2 inventory every year, verified",
                 "status": "met", "evidence": "GHG inventory and verification statement"},
                {"pathway": "green energy supply", "item": "PV and green power cover half the electricity",
                 "status": "partly", "evidence": "PV, GEC and green-power trade"},
                {"pathway": "product carbon footprint", "item": "Footprint of the main product",
                 "status": "not_met"},
                {"pathway": "digital carbon control", "item": "Metering down to every utility",
                 "status": "met", "evidence": "Lingtan metering"}]},
            "green_factory": {"indicators": [
                {"indicator": "tce_per_unit", "baseline": 1.1 * tce_u, "leading": 0.8 * tce_u, "weight": 0.3,
                 "source": "benchmark: around the first metered year"},
                {"indicator": "carbon_per_unit", "baseline": 1.1 * co2_u, "leading": 0.8 * co2_u,
                 "weight": 0.3, "source": "benchmark: around the first metered year"},
                {"indicator": "green_power_share", "baseline": 0.1, "leading": 0.6, "weight": 0.2,
                 "source": "benchmark"},
                {"indicator": "carbon_per_output_value", "baseline": 1.1 * co2_value,
                 "leading": 0.8 * co2_value, "weight": 0.2,
                 "source": "benchmark: around the first metered year"}]},
            "cloud": {
                "grades": ["S", "A", "B", "C", "D"], "period": "month", "periods": 12, "he": 0.001,
                "source": "benchmark: intervals around the first metered year",
                "indicators": [
                    {"indicator": "green_power_share", "weight": 0.35,
                     "intervals": [[0.6, None], [0.45, 0.6], [0.3, 0.45], [0.15, 0.3], [None, 0.15]]},
                    {"indicator": "carbon_per_unit", "weight": 0.25, "intervals": around(co2_u)},
                    {"indicator": "tce_per_unit", "weight": 0.25, "intervals": around(tce_u)},
                    {"indicator": "pv_self_consumption", "weight": 0.15,
                     "intervals": [[0.98, None], [0.95, 0.98], [0.9, 0.95], [0.8, 0.9], [None, 0.8]]}]},
        },
    }


OUTPUT_WAN_CNY_PER_UNIT = 0.035  # 350 CNY of output value per unit of product
OFFSETS = (("ccer", 2000), ("forestry_sink", 800))  # retired for each metered full year, tCO2e


def sizing_amounts(conn: sa.Connection, years: int) -> dict[str, float]:
    """The first metered year's amounts, which the entered years and the evaluations' intervals
    are sized from (untimed)."""
    from lingtan.core.kpi import window_kpis

    a = metered_start(years)
    k = window_kpis(conn, SITE_ID, a, local_midnight(date(a.year + 1, 1, 1)), NOW)
    e = k.electricity
    production = k.energy.production.value or 1.0
    return {"grid_import_kwh": e.grid_import_kwh.value or 0.0,
            "grid_export_kwh": e.grid_export_kwh.value or 0.0, "pv_kwh": e.pv_generation_kwh.value or 0.0,
            "gas_m3": sum(b.fuel_m3.value or 0.0 for b in k.boilers),
            "production": production,
            "tce_per_unit": 1000.0 * (k.energy.tce_total.value or 0.0) / production,      # kgce/unit
            "carbon_per_unit": 1000.0 * (k.carbon.scope12_market_t.value or 0.0) / production}  # kgCO2e/unit


def apply_programme(url: str, meters: list[Meter], years: int, tou: bool, progress: Progress
                    ) -> dict[str, Any]:
    """Write the whole site file with its programme (as ``lingtan site import``); returns it."""
    from lingtan.core.site_model import import_site_file

    engine = get_engine(url)
    try:
        with engine.begin() as conn:
            doc = site_document(meters, years, sizing_amounts(conn, years), tou)
            t = time.perf_counter()
            import_site_file(conn, doc, "benchmark", NOW)
        progress(f"programme written in {time.perf_counter() - t:.2f} s: base year"
                 f" {doc['programme']['base_year']}, {len(doc['programme']['history'])} entered years,"
                 f" {len(doc['targets'])} targets, {len(doc['offsets'])} offsets")
    finally:
        engine.dispose()
    return doc


# ---------------------------------------------------------------------------------------------
# the database


def wanted_params(meters: int, years: int, head: str) -> dict[str, Any]:
    return {"meters": meters, "years": years, "start": metered_start(years).isoformat(),
            "end": NOW.isoformat(), "generator": GENERATOR_VERSION, "migration": head}


def database_name(meters: int, years: int) -> str:
    """One kept database per size, so a quick check never replaces the full-size data."""
    return DEFAULT_DATABASE if (meters, years) == DEFAULT_SIZE else f"{DEFAULT_DATABASE}_{meters}m_{years}y"


def size_of(meters: int, years: int) -> Size:
    return Size(meters, (NOW - metered_start(years)).days, NOW)


def ensure_database(dsn: str, database: str, meters: list[Meter], n_meters: int, years: int, regenerate: bool,
                    chunk_days: int, progress: Progress) -> tuple[str, dict[str, Any]]:
    """(URL, generation report) of the kept database: reused when it holds what is asked for,
    upgraded in place when only the schema moved on, generated (again) otherwise."""
    url = _with_database(dsn, database)
    head = migration_head(url)
    wanted = wanted_params(n_meters, years, head)
    stored = None if regenerate else stored_params(url, GENERATION_TABLE)
    if stored is not None and stored != wanted and {**stored, "migration": head} == wanted:
        upgrade(url)
        get_engine(url).dispose()
        with psycopg.connect(url) as conn:
            conn.execute(f"UPDATE {GENERATION_TABLE} SET params = %s", (psycopg.types.json.Jsonb(wanted),))
        progress(f"upgraded {database} to migration {head} in place")
        stored = wanted
    if stored == wanted:
        with psycopg.connect(url) as conn:
            generation = {**conn.execute(f"SELECT report FROM {GENERATION_TABLE}").fetchone()[0],
                          "reused": True}
        progress(f"reusing {database}: {n_meters} meters, {years} full years from {wanted['start'][:10]}")
        return url, generation
    if stored is not None:
        progress(f"{database} holds {stored}, not {wanted}: generating again")
    url = recreate_database(dsn, database, progress)
    return url, generate(url, size_of(n_meters, years), meters, years, wanted, chunk_days, progress)


def generate(url: str, size: Size, meters: list[Meter], years: int, params: dict[str, Any], chunk_days: int,
             progress: Progress) -> dict[str, Any]:
    """The site (without its programme), then every series' minutes in chunks, aggregated with
    ``kpi.py``'s level statements into the 15-minute, hour and day rollups only."""
    from lingtan.core.site_model import import_site_file

    t0 = time.perf_counter()
    engine = get_engine(url)
    with engine.begin() as sa_conn:
        import_site_file(sa_conn, site_document(meters, years, None), "benchmark", size.start)
    engine.dispose()
    series = all_series(meters)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {GENERATION_TABLE} (params jsonb NOT NULL, started_at timestamptz"
                     " NOT NULL DEFAULT now(), finished_at timestamptz, report jsonb)")
        conn.execute(f"INSERT INTO {GENERATION_TABLE} (params) VALUES (%s)",
                     (psycopg.types.json.Jsonb(params),))
        _series_table(conn, series)
        conn.execute("ANALYZE bench_kpi_series")
        # As kpi.py: load without the unique keys and build them afterwards.
        keys = [k for k in key_constraints(conn) if k[0] in TABLES]
        for table, name, _ in keys:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET temp_buffers = '512MB'")
        conn.execute("SET synchronous_commit = off")
        # kpi._levels' first statement stores the minutes as readings_1m: left out, the 15-minute
        # level is built from the chunk's minutes directly.
        levels = _levels(size.start)[1:]
        step = chunk_days * 1440
        total = len(series) * size.minutes
        progress(f"aggregating {total:,} minute readings ({len(series)} series × {size.minutes:,} minutes)"
                 f" into 15-minute, hour and day rollups, {chunk_days} days per transaction")
        done = 0
        for k0 in range(0, size.minutes, step):
            k1 = min(k0 + step, size.minutes)
            with conn.transaction():
                conn.execute(_minute_rows(k0, k1, size.start))
                for statement in levels:
                    conn.execute(statement)
            done += len(series) * (k1 - k0)
            elapsed = time.perf_counter() - t0
            if (k0 // step) % 10 == 9 or k1 == size.minutes:
                progress(f"  day {k1 // 1440:>4}/{size.days}: {done:,} readings ({done / elapsed:,.0f}/s,"
                         f" eta {elapsed / done * (total - done):,.0f} s)")
        conn.execute("SET maintenance_work_mem = '1GB'")
        for table, name, definition in keys:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for table in (*TABLES, "sites", "meters"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        seconds = time.perf_counter() - t0
        report = {"seconds": round(seconds, 1), "minute_readings_aggregated": done, "series": len(series),
                  "rows_15m": int(conn.execute("SELECT count(*) FROM readings_15m").fetchone()[0]),
                  "database_bytes": database_bytes(conn)}
        conn.execute(f"UPDATE {GENERATION_TABLE} SET finished_at = now(), report = %s",
                     (psycopg.types.json.Jsonb(report),))
    progress(f"generated in {seconds:,.0f} s")
    return report


def environment(url: str) -> dict[str, Any]:
    import platform

    with psycopg.connect(url) as conn:
        settings = dict(conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (["shared_buffers", "work_mem", "jit", "max_parallel_workers_per_gather"],)).fetchall())
        return {"postgresql": conn.info.parameter_status("server_version"), "server_settings": settings,
                "python": platform.python_version(), "psycopg": psycopg.__version__, "cpus": os.cpu_count(),
                "machine": platform.platform(), "database_bytes": database_bytes(conn),
                "table_bytes": {t: int(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0])
                                for t in TABLES}}


# ---------------------------------------------------------------------------------------------
# the calls


@dataclass
class Call:
    label: str
    path: str
    short: str
    run: Callable[[sa.Connection], Any]
    runs: int


def year_window(year: int) -> tuple[datetime, datetime]:
    return local_midnight(date(year, 1, 1)), local_midnight(date(year + 1, 1, 1))


@dataclass
class ReportAnswer:
    report: Any
    pdf: bytes
    data_ms: float


def calls(year: int, lang: str, runs: int, report_runs: int) -> list[Call]:
    """The baseline first, then the programme's calls, as the API routes make them."""
    from lingtan.core import programme_report, programme_service, report_formats
    from lingtan.core.kpi import window_kpis

    a, b = year_window(year)

    def report(conn: sa.Connection) -> ReportAnswer:
        t = time.perf_counter()
        r = programme_report.zero_carbon_report(conn, SITE_ID, year, NOW)
        data_ms = (time.perf_counter() - t) * 1000
        tables = programme_report.report_tables(r)
        head, sub = programme_report.title(r, lang)  # type: ignore[arg-type]
        body, _ = report_formats.render(tables, "pdf", title=head, subtitle=sub, lang=lang)  # type: ignore[arg-type]
        return ReportAnswer(r, body, data_ms)

    return [
        Call(f"baseline: window_kpis, the year {year}", "lingtan.core.kpi.window_kpis", "window_kpis",
             lambda conn: window_kpis(conn, SITE_ID, a, b, NOW), runs),
        Call("targets (4 targets)", "programme_service.targets", "targets",
             lambda conn: programme_service.targets(conn, SITE_ID, NOW), runs),
        Call(f"net balance {year}", "programme_service.neutrality", "neutrality",
             lambda conn: programme_service.neutrality(conn, SITE_ID, year, NOW), runs),
        Call(f"evaluations {year}", "programme_service.evaluate", "evaluate",
             lambda conn: programme_service.evaluate(conn, SITE_ID, year, NOW), runs),
        Call(f"annual report {year}, PDF ({lang})", "zero_carbon_report + report_tables + render(pdf)", "pdf",
             report, report_runs),
    ]


def rounds(conn: sa.Connection, cs: list[Call], warmup: int, progress: Progress
           ) -> tuple[dict[str, Timing], dict[str, Any], list[float]]:
    """``warmup`` untimed rounds, then rounds of one call of each (a call drops out once it has
    its runs), each call in its own transaction as an API request makes it. Returns the timings,
    each call's last answer and the report's data part of each timed report."""
    answers: dict[str, Any] = {}
    ms: dict[str, list[float]] = {c.label: [] for c in cs}
    data_ms: list[float] = []
    for _ in range(warmup):
        for c in cs:
            c.run(conn)
            conn.rollback()
    most = max(c.runs for c in cs)
    for i in range(most):
        for c in cs:
            if len(ms[c.label]) >= c.runs:
                continue
            t = time.perf_counter()
            answers[c.label] = c.run(conn)
            ms[c.label].append((time.perf_counter() - t) * 1000)
            conn.rollback()
            if isinstance(answers[c.label], ReportAnswer):
                data_ms.append(answers[c.label].data_ms)
        if (i + 1) % max(1, most // 5) == 0:
            progress(f"  round {i + 1}/{most}: " + ", ".join(
                f"{c.short} {ms[c.label][-1]:,.0f} ms" for c in cs if len(ms[c.label]) > i))
    timings = {c.label: Timing(c.label, c.path, len(ms[c.label]), ms[c.label]) for c in cs}
    return timings, answers, data_ms


@contextmanager
def engine_calls(counts: list[int]) -> Iterator[None]:
    """Counts ``kpi.window_kpis_many`` calls and their windows: every figure goes through it."""
    from lingtan.core import kpi

    real = kpi.window_kpis_many

    def counting(conn: Any, site_id: str, windows: Any, *args: Any, **kwargs: Any) -> Any:
        counts[0] += 1
        counts[1] += len(windows)
        return real(conn, site_id, windows, *args, **kwargs)

    kpi.window_kpis_many = counting  # type: ignore[assignment]
    try:
        yield
    finally:
        kpi.window_kpis_many = real  # type: ignore[assignment]


def profile(engine: Any, conn: sa.Connection, c: Call) -> dict[str, Any]:
    """One more (untimed) call: the engine calls and windows it makes, its SQL statements (count,
    time, the slowest) and the time outside SQL."""
    counts = [0, 0]
    with engine_calls(counts):
        t = time.perf_counter()
        rows = statement_profile(engine, conn, c.run, top=3)
        total = (time.perf_counter() - t) * 1000
    *top, summary = rows
    return {"engine_calls": counts[0], "engine_windows": counts[1],
            "statements": int(summary["statement"].split()[1]), "sql_ms": summary["ms"],
            "call_ms": round(total, 1), "slowest": top}


# ---------------------------------------------------------------------------------------------
# is every answer right?


def verify_levels(url: str) -> Check:
    """The 15-minute, hour and day levels hold the same energy for every counter series."""
    sums = " JOIN ".join(
        f"(SELECT meter_id, quantity, sum(delta) d{i} FROM {t} WHERE delta IS NOT NULL GROUP BY 1, 2) {t}"
        + (" USING (meter_id, quantity)" if i else "") for i, t in enumerate(TABLES))
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT meter_id, quantity, d0, d1, d2 FROM {sums}").fetchall()
    bad = [f"{m}/{q}: 15m {x:,.3f}, 1h {y:,.3f}, 1d {z:,.3f}" for m, q, x, y, z in rows
           if not (_close(x, y, 1e-9) and _close(x, z, 1e-9))]
    return Check("15 min = 1 h = 1 day levels", bool(rows) and not bad,
                 f"{len(rows)} counter series agree" if not bad
                 else f"{len(bad)} differ: {'; '.join(bad[:3])}")


# (role, quantity) of a counter → the engine amount it adds to (amounts.gather)
AMOUNTS = {("grid_import", "active_energy_import"): "grid_import_kwh",
           ("grid_import", "active_energy_export"): "grid_export_kwh",
           ("pv_generation", "active_energy_export"): "pv_kwh", ("boiler_fuel", "gas_volume"): "gas_m3",
           ("production", "production_count"): "production"}


def closed_form_year(url: str, meters: list[Meter], year: int, start: datetime) -> dict[str, float]:
    """Each amount of ``year`` from the generator's closed form: a counter's reading at the year's
    last minute less its reading at the minute before the year (the first minute of the data has
    no reading before it, so nothing is counted for it)."""
    a, b = year_window(year)
    ka, kb = int((a - start).total_seconds() // 60), int((b - start).total_seconds() // 60)
    inc = f"{counter_sql(str(kb - 1))} - {counter_sql(str(max(ka - 1, 0)))}"
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT s.meter_id, s.quantity, {inc} FROM bench_kpi_series s WHERE s.counter")
        roles = {m.id: m.role for m in meters}
        out = dict.fromkeys(AMOUNTS.values(), 0.0)
        for meter, quantity, value in rows:
            key = AMOUNTS.get((roles[meter], quantity))
            if key is not None:
                out[key] += float(value)
    return out


def _ok(x: float | None, y: float | None) -> bool:
    return x is not None and y is not None and _close(x, y, 1e-9)


def check_answers(url: str, engine: Any, meters: list[Meter], size: Size, year: int, doc: dict[str, Any],
                  answers: list[Any]) -> list[Check]:
    """The answers of the last timed round against the baseline's year and each other."""
    from lingtan.core.kpi import window_kpis
    from lingtan.core.programme_figures import last_12_months

    base, (_, statuses), balance, ev, report = answers
    checks: list[Check] = []
    s12 = base.carbon.scope12_market_t.value
    e = base.electricity
    got = {"grid_import_kwh": e.grid_import_kwh.value, "grid_export_kwh": e.grid_export_kwh.value,
           "pv_kwh": e.pv_generation_kwh.value, "gas_m3": sum(x.fuel_m3.value or 0.0 for x in base.boilers),
           "production": base.energy.production.value}
    want = closed_form_year(url, meters, year, size.start)
    diffs = [f"{k}: engine {got[k]!r}, closed form {v!r}" for k, v in want.items()
             if got[k] is None or not _close(got[k], v, 1e-6)]
    checks.append(Check(f"window_kpis {year} = generator", not diffs and want["grid_import_kwh"] > 0,
                        f"{len(want)} amounts within 1e-6 (grid import {want['grid_import_kwh']:,.0f} kWh,"
                        f" gas {want['gas_m3']:,.0f} m³)" if not diffs else "; ".join(diffs)))

    offsets = sum(o["quantity_t"] for o in doc["offsets"] if o["period"] == year)
    b = balance
    bal_ok = (b.source == "provisional" and _ok(b.gross_t, s12) and _ok(b.offsets_t, offsets)
              and s12 is not None and _ok(b.net_t, s12 - offsets) and b.instruments_t > 0
              and b.before_instruments_t is not None
              and _ok(b.before_instruments_t - b.instruments_t, b.gross_t))
    checks.append(Check(f"net balance {year}: gross = scope12_market", bal_ok,
                        f"gross {b.gross_t:,.3f} t, window_kpis {s12:,.3f} t; offsets {b.offsets_t:,.0f} t"
                        f" (entered {offsets:,.0f}); instruments {b.instruments_t:,.3f} t;"
                        f" net {b.net_t:,.3f} t ({b.source})"))

    zc, cl, gf = ev.zero_carbon, ev.cloud, ev.green_factory
    now_month = NOW.year * 12 + NOW.month - 1
    months = [f"{u // 12}-{u % 12 + 1:02d}" for u in range(now_month - 12, now_month)]  # before now's
    ev_ok = (_ok(zc.residual_t, s12) and _ok(zc.offsets_t, offsets) and cl is not None
             and cl.grade is not None and cl.periods == months
             and all(len(i.values) == 12 and None not in i.values for i in cl.indicators)
             and gf.score is not None and all(ln.value is not None for ln in gf.indicators))
    checks.append(Check(f"evaluations {year}", ev_ok,
                        f"residual {zc.residual_t:,.3f} t = scope12_market; cloud grade"
                        f" {cl.grade if cl else None} over {cl.periods[0] if cl else ''}…"
                        f"{cl.periods[-1] if cl else ''}; green factory score"
                        f" {gf.score if gf.score is None else round(gf.score, 1)}; {zc.stars or 'no'} stars"))

    with engine.connect() as conn:
        l12 = window_kpis(conn, SITE_ID, *last_12_months(NOW, "Asia/Shanghai"), NOW)
        conn.rollback()
    emis = next(t for t in statuses if t.kind == "emissions")
    last = next((v for v in emis.years if v.label == str(year)), None)
    t_ok = (len(statuses) == len(doc["targets"]) and all(t.status != "unknown" for t in statuses)
            and emis.base is not None and emis.base.source == "entered" and last is not None
            and _ok(last.value, s12) and emis.last_12_months is not None
            and _ok(emis.last_12_months.value, l12.carbon.scope12_market_t.value))
    checks.append(Check("targets", t_ok, "; ".join(f"{t.id} {t.status}" for t in statuses)
                        + f"; emissions {year} = scope12_market, last 12 months = window_kpis"))

    r = report.report
    r_ok = (report.pdf.startswith(b"%PDF-") and len(report.pdf) > 10_000 and _ok(r.balance.gross_t, s12)
            and len(r.targets) == len(statuses) and r.evaluations.cloud is not None
            and cl is not None and r.evaluations.cloud.grade == cl.grade)
    checks.append(Check("annual report PDF", r_ok,
                        f"{len(report.pdf):,} bytes; gross {r.balance.gross_t:,.3f} t, the same cloud grade"))
    return checks


# ---------------------------------------------------------------------------------------------
# the report


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def render(config: dict[str, Any], env: dict[str, Any], generation: dict[str, Any], timings: list[Timing],
           report_data: Timing, profiles: dict[str, dict[str, Any]], checks: list[Check]) -> str:
    reused = "reused" if generation.get("reused") else "generated now"
    base = timings[0]
    tables = ", ".join(f"{t} {_gb(n)}" for t, n in env["table_bytes"].items())
    s = env["server_settings"]
    lines = [
        "",
        f"Lingtan zero-carbon programme benchmark: site {SITE_ID}, {config['meters']} meters"
        f" ({config['series']} series), metered {config['start'][:10]} – {config['end'][:10]} (now):"
        f" {config['years']} full years; entered {config['base_year']} (base year)"
        f" and {config['base_year'] + 1}; tariff: {TARIFFS[config['tariff']]}",
        f"database {config['database']}: {_gb(env['database_bytes'])} ({reused}; generation took"
        f" {generation['seconds']:,.0f} s); {tables}",
        f"PostgreSQL {env['postgresql']} (shared_buffers {s.get('shared_buffers')},"
        f" work_mem {s.get('work_mem')}, jit {s.get('jit')}), Python {env['python']}, {env['cpus']} CPUs",
        "",
        f"{'call':<42}{'runs':>5}{'p50 ms':>10}{'p95 ms':>10}{'p50 ÷ base':>12}{'p95 ÷ base':>12}"
        f"{'engine':>8}{'SQL':>5}",
        "-" * 104,
    ]
    for t in [*timings, report_data]:
        p = profiles.get(t.label)
        eng, sql = (f"{p['engine_calls']}/{p['engine_windows']}", str(p["statements"])) if p else ("", "")
        lines.append(f"{t.label:<42.42}{t.runs:>5}{t.p50:>10,.1f}{t.p95:>10,.1f}"
                     f"{t.p50 / base.p50:>11.2f}×{t.p95 / base.p95:>11.2f}×{eng:>8}{sql:>5}")
    lines += [
        "",
        "ratios: over the baseline's p50 (p95), measured in the same interleaved rounds; engine:"
        " kpi.window_kpis_many calls / windows in one call; SQL: statements in one call",
        "",
        "where one more call's time goes (SQL, outside SQL, the slowest statement)",
    ]
    for label, p in profiles.items():
        top = p["slowest"][0] if p["slowest"] else {"ms": 0.0, "calls": 0, "statement": ""}
        lines.append(f"  {label:<40.40}{p['call_ms']:>9,.1f} ms: SQL {p['sql_ms']:,.1f}, outside"
                     f" {p['call_ms'] - p['sql_ms']:,.1f}; slowest {top['ms']:,.1f} ms ({top['calls']}×)"
                     f" {top['statement'][:60]}…")
    lines += ["", "correctness"]
    for c in checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.name:<40} {c.detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.programme", description=__doc__.split("\n")[0])
    p.add_argument("--years", type=int, default=DEFAULT_SIZE[1],
                   help=f"full calendar years metered before {LAST_FULL_YEAR + 1}-01 (1–{MAX_YEARS}; the"
                        " base year is entered two years before the first; default: %(default)s)")
    p.add_argument("--meters", type=int, default=DEFAULT_SIZE[0],
                   help="meters of kpi.py's layout (≥ 10; its compressors are left out;"
                        " default: %(default)s)")
    p.add_argument("--dsn", "--database-url", dest="dsn",
                   default=os.environ.get("LINGTAN_BENCH_DATABASE_URL", DEFAULT_URL),
                   help="server (any database on it; default: $LINGTAN_BENCH_DATABASE_URL or %(default)s)")
    p.add_argument("--database", default=None,
                   help=f"database to generate into and keep (default: {DEFAULT_DATABASE} for the default"
                        f" size, {DEFAULT_DATABASE}_<meters>m_<years>y otherwise)")
    p.add_argument("--regenerate", action="store_true", help="generate the data even when it is there")
    p.add_argument("--runs", type=int, default=30,
                   help="timed calls of the baseline, targets, net balance and evaluations (default:"
                        " %(default)s)")
    p.add_argument("--report-runs", type=int, default=10, help="timed PDF reports (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default: %(default)s)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh",
                   help="the PDF's language (default: %(default)s, as the API's)")
    p.add_argument("--tariff", choices=("tou", "flat"), default="tou",
                   help="the site's tariff: four time-of-use bands, whose costs read the grid import by"
                        " quarter hour, or one flat price (default: %(default)s)")
    p.add_argument("--chunk-days", type=int, default=10, help="days generated per transaction")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    if not 1 <= args.years <= MAX_YEARS:
        p.error(f"--years must be 1–{MAX_YEARS}: the base year, two years before metering, needs the"
                " library's factors, which start with 2021")
    if args.meters < 10:
        p.error("--meters must be at least 10 (kpi.py's nine fixed roles and a load)")
    for name in ("runs", "report_runs", "chunk_days"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be 0 or more")
    args.database = args.database or database_name(args.meters, args.years)
    return args


TARIFFS = {"tou": "four time-of-use bands", "flat": "one flat price"}
CODE = ("lingtan/core/kpi.py", "lingtan/core/tariff.py", "lingtan/core/programme_service.py",
        "lingtan/core/programme_figures.py", "lingtan/core/targets.py", "lingtan/core/neutrality.py",
        "lingtan/core/evaluations.py", "lingtan/core/programme_report.py", "lingtan/core/report_pdf.py")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    meters = site_meters(args.meters)
    series = all_series(meters)
    size = size_of(args.meters, args.years)
    url, generation = ensure_database(args.dsn, args.database, meters, args.meters, args.years,
                                      args.regenerate, args.chunk_days, progress)
    doc = apply_programme(url, meters, args.years, args.tariff == "tou", progress)
    env = environment(url)
    config = {"meters": len(meters), "series": len(series), "years": args.years, "database": args.database,
              "start": size.start.isoformat(), "end": NOW.isoformat(), "now": NOW.isoformat(),
              "year": LAST_FULL_YEAR, "base_year": doc["programme"]["base_year"], "server": _redact(args.dsn),
              "runs": args.runs, "report_runs": args.report_runs, "warmup": args.warmup, "lang": args.lang,
              "tariff": args.tariff,
              "code": {f: _file_version(f) for f in CODE}}

    progress("checking the generated rollups")
    checks = [*verify_counts(url, size, len(series)), verify_levels(url)]

    cs = calls(LAST_FULL_YEAR, args.lang, args.runs, args.report_runs)
    engine = get_engine(url)
    try:
        with engine.connect() as conn:
            progress(f"timing {len(cs)} calls in interleaved rounds, {args.warmup} untimed first")
            timings, answers, data_ms = rounds(conn, cs, args.warmup, progress)
            progress("one more call of each, counting engine calls and statements")
            profiles = {c.label: profile(engine, conn, c) for c in cs}
        checks += check_answers(url, engine, meters, size, LAST_FULL_YEAR, doc,
                                [answers[c.label] for c in cs])
    finally:
        engine.dispose()
    ordered = [timings[c.label] for c in cs]
    report_data = Timing("  … of which zero_carbon_report (data)", "programme_report.zero_carbon_report",
                         len(data_ms), data_ms)

    ok = all(c.ok for c in checks)
    print(render(config, env, generation, ordered, report_data, profiles, checks))
    base = ordered[0]

    def entry(t: Timing) -> dict[str, Any]:
        p = profiles.get(t.label, {})
        return {"call": t.label, **t.as_dict(), "ratio_p50": t.p50 / base.p50, "ratio_p95": t.p95 / base.p95,
                **{k: p[k] for k in ("engine_calls", "engine_windows", "statements", "sql_ms") if k in p}}

    result = {
        "benchmark": "programme",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config, "environment": env, "generation": generation,
        "timings": [entry(t) for t in [*ordered, report_data]],
        "profiles": profiles,
        "checks": [asdict(c) for c in checks],
        "correct": ok,
    }
    return finish(args.output, result, ok)


if __name__ == "__main__":
    sys.exit(main())
