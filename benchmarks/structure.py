"""Metering-structure figures: every node's KPIs against the same energy summed straight from rollups.

Run:  .venv/bin/python -m benchmarks.structure [--meters 1000] [--days 365] [--dsn URL] [--runs N]

One site (Asia/Shanghai) whose metering structure has 1,000 meters in five levels — the site's
grid incomer, 5 areas, 25 workshops, 150 lines and ~820 pieces of equipment, every node with an
electricity meter of its own, ten equipment nodes metered through virtual meters (a share of
their area's compressed-air plant) and a production counter at the root — and a 4-band
time-of-use tariff. A year of 15-minute energy is generated in SQL straight into the rollup
tables the engine reads (``readings_15m``, with ``readings_1h`` and ``readings_1d`` built from it
as the refresher builds them): equipment follows a day/night profile, and every parent meter
counts 1.00–1.06 × what its children count, so unmetered energy is never zero. The database
(``lingtan_bench_structure``, or ``lingtan_bench_structure_<M>m_<D>d`` for other sizes) is kept
and reused by later runs with the same parameters.

Timed, each after a warm-up, in the same run:

1. ``structure_kpis`` for a calendar month (the last of the data) and for the whole span (a
   calendar year at the default size): every node's energy, tce, carbon, cost per band,
   maximum demand, unmetered energy and coverage by level;
2. the baseline: one SQL statement that sums every node's electricity (its meters' signed
   coefficients × delta + gap_delta from the coarsest rollup tiles) for the same windows;
3. importing a site file with 300 meters and its structure (``apply_site_file``, as
   ``lingtan site import`` does), first as a new site and then again unchanged.

p50 and p95, the ratio tree / baseline and where the tree call's time goes are printed and
written to ``benchmarks/results/structure.json``. The exit status is non-zero only when a
correctness check fails (a node's electricity differs from the baseline's, the generated
rollups differ from what the product's rollup SQL makes of the level below, ...): the targets
— month tree p95 < 300 ms, import < 10 s — are reported as PASS or MISS.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
import yaml

from benchmarks.kpi import (
    Timing,
    _close,
    _file_version,
    _h,
    _redact,
    _with_database,
    database_bytes,
    key_constraints,
    migration_head,
    recreate_database,
    timed,
)
from benchmarks.kpi import stored_params as kpi_stored_params
from benchmarks.report import Check, Progress, finish
from lingtan.core.counters import tiles
from lingtan.core.rollups import _FROM_LEVEL, _UPSERT, LEVELS
from lingtan.kernel.db import get_engine
from lingtan.kernel.migrate import upgrade

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DATABASE = "lingtan_bench_structure"
DEFAULT_SIZE = (1000, 365)  # meters, days: the size kept as DEFAULT_DATABASE
RESULTS = Path(__file__).resolve().parent / "results" / "structure.json"

CST = timezone(timedelta(hours=8))
# The data ends at this China midnight whatever the date of the run: the default year is 2025.
END = datetime(2026, 1, 1, tzinfo=CST)
SITE_ID = "bench-structure"
IMPORT_SITE_ID = "bench-structure-import"
IMPORT_PREFIX = "imp-"  # meter ids are unique across sites
TARGET_MONTH_MS = 300.0  # month tree p95, the target
TARGET_IMPORT_S = 10.0  # a 300-meter site file with its structure
# Bump when the generated data, the site or its structure change: another version is rebuilt.
GENERATOR_VERSION = 1
TABLES = ("readings_15m", "readings_1h", "readings_1d")
QUARTER = timedelta(minutes=15)
QUARTERS_PER_DAY = 96
ENERGY = "active_energy_import"
PRODUCTION = "production_count"
# The tree's shape above the equipment: areas, workshops per area, lines per workshop.
AREAS, WORKSHOPS, LINES = 5, 5, 6
TARIFF = {"flat_cny_per_kwh": 0.62, "bands": [
    {"name": "valley", "start": "23:00", "end": "07:00", "price_cny_per_kwh": 0.31},
    {"name": "flat", "start": "07:00", "end": "08:00", "price_cny_per_kwh": 0.62},
    {"name": "peak", "start": "08:00", "end": "11:00", "price_cny_per_kwh": 0.98},
    {"name": "flat", "start": "11:00", "end": "17:00", "price_cny_per_kwh": 0.62},
    {"name": "peak", "start": "17:00", "end": "19:00", "price_cny_per_kwh": 0.98},
    {"name": "sharp_peak", "start": "19:00", "end": "21:00", "price_cny_per_kwh": 1.18},
    {"name": "flat", "start": "21:00", "end": "23:00", "price_cny_per_kwh": 0.62}]}
BANDS = 4  # distinct band names above


# ---------------------------------------------------------------------------------------------
# the site and its metering tree


@dataclass
class Leaf:
    """A meter whose 15-minute energy is drawn from a profile (no sub-meters below it):
    ``base × (night + (1 − night) × (½ + ½ cos 2π(h − peak)/24)) × weekend × (1 ± noise/2)`` kW,
    or units of product per hour for the production counter."""

    sid: int
    meter_id: str
    quantity: str
    base: float
    night: float
    peak: float
    weekend: float
    noise: float
    e0: float


@dataclass
class Tree:
    """A site file's meters and structure, and what the generator needs to fill the rollups."""

    meters: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    virtual: list[dict[str, Any]]
    leaves: list[Leaf]
    # (depth of the parent node, parent meter, child meter, coefficient, parent's loss factor):
    # a parent meter counts loss × Σ coefficient × child meter, level by level from the bottom.
    edges: list[tuple[int, str, str, float, float]] = field(default_factory=list)

    @property
    def physical(self) -> int:
        return len(self.meters)


def fixed_meters(areas: int = AREAS, workshops: int = WORKSHOPS, lines: int = LINES) -> int:
    """Meters above the equipment: incomer, areas, workshops, lines, one air plant per area and the
    production counter."""
    return 1 + areas + areas * workshops + areas * workshops * lines + areas + 1


def build_tree(meters: int, prefix: str = "", areas: int = AREAS, workshops: int = WORKSHOPS,
               lines: int = LINES) -> Tree:
    """``meters`` physical meters in five levels. The equipment (what is left) is dealt over the
    lines in turn; two equipment nodes per area are metered by virtual meters, 0.6 and 0.4 of the
    area's compressed-air plant."""
    equipment = meters - fixed_meters(areas, workshops, lines)
    if equipment < 0 or workshops < 2:
        raise ValueError(f"at least {fixed_meters(areas, workshops, lines)} meters for this shape")
    t = Tree([], [], [], [])
    children: dict[str, list[tuple[str, float]]] = {}  # node → [(meter, coef)] of its children
    own: dict[str, str] = {}  # node → its physical meter
    depth: dict[str, int] = {}

    def node(nid: str, name: str, kind: str, parent: str | None, meter: str, d: int, **extra: Any) -> None:
        t.nodes.append({"id": nid, "name": name, "kind": kind, **({"parent": parent} if parent else {}),
                        "meters": [{"meter": meter}], **extra})
        depth[nid] = d

    def physical(mid: str, name: str, role: str | None = None) -> str:
        t.meters.append({"id": mid, "name": name, **({"role": role} if role else {})})
        return mid

    root_meter = physical(f"{prefix}grid-incomer", "Grid incomer", "grid_import")
    node("site", "Benchmark plant", "site", None, root_meter, 0, production_meter=f"{prefix}prod-site")
    own["site"] = root_meter
    physical(f"{prefix}prod-site", "Finished goods counter", "production")
    line_ids: list[str] = []
    uses = ("production_process", "production_process", "auxiliary", "hvac", "lighting")
    for a in range(1, areas + 1):
        aid = f"a{a}"
        own[aid] = physical(f"{prefix}em-{aid}", f"Area {a} incomer")
        node(aid, f"Area {a}", "area", "site", own[aid], 1, end_use=uses[(a - 1) % len(uses)])
        children.setdefault("site", []).append((own[aid], 1.0))
        plant = physical(f"{prefix}air-plant-{aid}", f"Area {a} compressed-air plant")
        t.leaves.append(_leaf(len(t.leaves) + 1, plant, ENERGY, 150.0 + 100.0 * _h("air", a)))
        for w in range(1, workshops + 1):
            wid = f"{aid}-w{w}"
            own[wid] = physical(f"{prefix}em-{wid}", f"Workshop {a}.{w} feeder")
            node(wid, f"Workshop {a}.{w}", "workshop", aid, own[wid], 2, department=True,
                 floor_area_m2=round(2000 + 6000 * _h("area", wid)),
                 headcount=round(40 + 160 * _h("hc", wid)))
            children.setdefault(aid, []).append((own[wid], 1.0))
            for ln in range(1, lines + 1):
                lid = f"{wid}-l{ln}"
                own[lid] = physical(f"{prefix}em-{lid}", f"Line {a}.{w}.{ln}")
                node(lid, f"Line {a}.{w}.{ln}", "line", wid, own[lid], 3)
                children.setdefault(wid, []).append((own[lid], 1.0))
                line_ids.append(lid)
            if w <= 2:  # the first line of the first two workshops takes a share of the air plant
                lid, share = f"{wid}-l1", (0.6 if w == 1 else 0.4)
                vid = f"{prefix}vm-{lid}-air"
                t.virtual.append({"id": vid, "name": f"Air for line {a}.{w}.1",
                                  "formula": f"{share} * {plant}"})
                node(f"{lid}-air", f"Compressed air {a}.{w}.1", "equipment", lid, vid, 4,
                     end_use="compressed_air")
                children.setdefault(lid, []).append((plant, share))
    counts: dict[str, int] = {}
    for j in range(equipment):
        lid = line_ids[j % len(line_ids)]
        counts[lid] = counts.get(lid, 0) + 1
        eid = f"{lid}-e{counts[lid]}"
        own[eid] = physical(f"{prefix}em-{eid}", f"Equipment {eid}")
        node(eid, f"Equipment {eid}", "equipment", lid, own[eid], 4)
        children.setdefault(lid, []).append((own[eid], 1.0))
        t.leaves.append(_leaf(len(t.leaves) + 1, own[eid], ENERGY, round(5.0 + 55.0 * _h("kw", eid), 1)))
    drawn = {leaf.meter_id for leaf in t.leaves}
    for nid in depth:
        if nid in own and nid not in children and own[nid] not in drawn:  # a line without equipment
            t.leaves.append(_leaf(len(t.leaves) + 1, own[nid], ENERGY, round(20.0 + 40.0 * _h("kw", nid), 1)))
    for nid, kids in children.items():
        loss = round(1.0 + 0.06 * _h("loss", nid), 4)  # 1.00–1.06, 1.03 on average
        t.edges += [(depth[nid], own[nid], m, c, loss) for m, c in kids]
    prod = Leaf(len(t.leaves) + 1, f"{prefix}prod-site", PRODUCTION, 12.0, 0.3, 13.0, 0.5, 0.2,
                round(1e5 * _h("prod")))
    t.leaves.append(prod)
    assert t.physical == meters, (t.physical, meters)
    return t


def _leaf(sid: int, meter: str, quantity: str, base: float) -> Leaf:
    return Leaf(sid, meter, quantity, base, night=round(0.25 + 0.35 * _h("night", meter), 3),
                peak=round(10.0 + 6.0 * _h("peak", meter), 2), weekend=round(0.5 + 0.3 * _h("wk", meter), 3),
                noise=0.1, e0=round(1e4 + 1e6 * _h("e0", meter), 2))


def site_file(tree: Tree, site_id: str, years: list[int]) -> dict[str, Any]:
    """The site file of the tree: meters, a 4-band tariff and the structure."""
    return {
        "site": {"id": site_id, "name": "Structure benchmark plant", "timezone": "Asia/Shanghai",
                 "grid_region": "north_east"},
        "energy": {"tariff": TARIFF, "production_unit": "t"},
        "meters": tree.meters,
        "structure": {
            "nodes": tree.nodes, "virtual_meters": tree.virtual, "unmetered_threshold_pct": 5.0,
            "carbon_price": [{"year": y, "cny_per_tco2e": 80.0, "source": "benchmark"} for y in years]},
    }


# ---------------------------------------------------------------------------------------------
# the database


@dataclass
class Size:
    meters: int
    days: int
    end: datetime

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def years(self) -> list[int]:
        return list(range(self.start.year, (self.end - timedelta(seconds=1)).year + 1))


def wanted_params(size: Size, head: str) -> dict[str, Any]:
    return {"meters": size.meters, "days": size.days, "end": size.end.isoformat(),
            "generator": GENERATOR_VERSION, "migration": head}


def stored_params(url: str) -> dict[str, Any] | None:
    return kpi_stored_params(url, "bench_structure_generation")


def database_name(meters: int, days: int) -> str:
    """The kept database of a size: one per size, so a quick check never replaces the full data."""
    return DEFAULT_DATABASE if (meters, days) == DEFAULT_SIZE else f"{DEFAULT_DATABASE}_{meters}m_{days}d"


def ensure_database(dsn: str, database: str, size: Size, tree: Tree, regenerate: bool, chunk_days: int,
                    progress: Progress) -> tuple[str, dict[str, Any]]:
    """(URL, generation report) of the kept database holding ``size``: reused when it holds what is
    asked for, generated (again) otherwise."""
    url = _with_database(dsn, database)
    head = migration_head(url)
    wanted = wanted_params(size, head)
    stored = None if regenerate else stored_params(url)
    if stored is not None and stored != wanted and {**stored, "migration": head} == wanted:
        # a newer schema around the same data (e.g. a cache table): upgrade in place, as kpi.py does
        upgrade(url)
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE bench_structure_generation SET params = %s",
                         (psycopg.types.json.Jsonb(wanted),))
        progress(f"upgraded {database} to migration {head} in place")
        stored = wanted
    if stored == wanted:
        with psycopg.connect(url) as conn:
            generation = {**conn.execute("SELECT report FROM bench_structure_generation").fetchone()[0],
                          "reused": True}
        progress(f"reusing {database}: it holds {size.meters} meters × {size.days} days")
        return url, generation
    if stored is not None:
        progress(f"{database} holds {stored}, not {wanted}: generating again")
    url = recreate_database(dsn, database, progress)
    return url, generate(url, size, tree, head, chunk_days, progress)


def _noise(k: str) -> str:
    """Uniform in [0, 1) from the leaf and the quarter hour (the classic sine hash)."""
    x = f"(sin(({k})::float8 * 12.9898 + s.sid * 78.233) * 43758.5453)"
    return f"({x} - floor({x}))"


def leaf_delta_sql(k: str, dow0: int) -> str:
    """A leaf's energy in quarter ``k`` after the first local midnight (kWh, or units of product):
    the rate at the quarter's middle × ¼ h, in register steps of 0.01."""
    hour = f"((mod({k}, {QUARTERS_PER_DAY}) + 0.5) / 4.0)"
    weekend = f"(CASE WHEN mod({k} / {QUARTERS_PER_DAY} + {dow0}, 7) >= 5 THEN s.weekend ELSE 1.0 END)"
    rate = (f"(s.base * (s.night + (1 - s.night) * (0.5 + 0.5 * cos(2 * pi() * ({hour} - s.peak) / 24.0)))"
            f" * {weekend} * (1 + s.noise * ({_noise(k)} - 0.5)))")
    return f"(round({rate} * 0.25 * 100) / 100)"


_COLUMNS = "bucket, meter_id, quantity, count, min, max, avg, first, last, delta, covered, gap_delta"


def chunk_statements(k0: int, k1: int, start: datetime, depths: list[int]) -> list[str]:
    """Quarters [k0, k1) of every meter into the three rollup levels.

    Leaves from their profile, then each level of parents from the level below (deepest first).
    A counter read once a minute rises evenly through its quarter hour: ``last`` is the running
    total, ``first`` the reading one minute into the quarter, 15 readings, 900 s covered, no gap
    (``lingtan/core/sql/counter_minutes.sql`` for dense, gap-free data). The hour and day rows are
    the level below summed with the formulas of ``lingtan/core/sql/rollup_from_level.sql``.
    """
    origin = f"timestamptz '{start.isoformat()}'"
    out = [f"""
        CREATE TEMP TABLE q AS
        SELECT k, s.meter_id, s.quantity, {leaf_delta_sql('k', start.weekday())} AS delta
        FROM bench_structure_leaves s CROSS JOIN generate_series({k0}, {k1 - 1}) AS k
    """, "ANALYZE q"]
    for d in depths:
        out.append(f"""
            INSERT INTO q (k, meter_id, quantity, delta)
            SELECT q.k, e.parent, '{ENERGY}', round(e.loss * sum(e.coef * q.delta) * 100) / 100
            FROM q JOIN bench_structure_edges e ON e.child = q.meter_id AND q.quantity = '{ENERGY}'
            WHERE e.depth = {d}
            GROUP BY q.k, e.parent, e.loss
        """)
    out += [f"""
        CREATE TEMP TABLE l15 AS
        SELECT {origin} + k * interval '15 minutes' AS bucket, meter_id, quantity, 15 AS count,
               last - delta + delta / 15 AS min, last AS max, (last - delta + delta / 15 + last) / 2 AS avg,
               last - delta + delta / 15 AS first, last, delta, 900.0::float8 AS covered,
               0.0::float8 AS gap_delta, k
        FROM (SELECT q.k, q.meter_id, q.quantity, q.delta,
                     t.total + sum(q.delta) OVER (PARTITION BY q.meter_id, q.quantity ORDER BY q.k) AS last
              FROM q JOIN bench_structure_totals t USING (meter_id, quantity)) x
    """, f"INSERT INTO readings_15m ({_COLUMNS}) SELECT {_COLUMNS} FROM l15 ORDER BY bucket, meter_id",
        """
        UPDATE bench_structure_totals t SET total = x.last
        FROM (SELECT DISTINCT ON (meter_id, quantity) meter_id, quantity, last FROM l15
              ORDER BY meter_id, quantity, k DESC) x
        WHERE t.meter_id = x.meter_id AND t.quantity = x.quantity
    """]
    below = "l15"
    for table, width in (("readings_1h", "1 hour"), ("readings_1d", "1 day")):
        level = f"l_{table}"
        out.append(f"""
            CREATE TEMP TABLE {level} AS
            SELECT date_bin(interval '{width}', bucket, {origin}) AS bucket, meter_id, quantity,
                   sum(count)::int AS count, min(min) AS min, max(max) AS max,
                   sum(avg * count) / sum(count) AS avg,
                   (array_agg(first ORDER BY bucket))[1] AS first,
                   (array_agg(last ORDER BY bucket DESC))[1] AS last,
                   sum(delta) AS delta, sum(covered) AS covered, sum(gap_delta) AS gap_delta
            FROM {below} GROUP BY 1, 2, 3
        """)
        out.append(f"INSERT INTO {table} ({_COLUMNS}) SELECT {_COLUMNS} FROM {level}"
                   " ORDER BY bucket, meter_id")
        below = level
    out += ["DROP TABLE q", "DROP TABLE l15", "DROP TABLE l_readings_1h", "DROP TABLE l_readings_1d"]
    return out


def generate(url: str, size: Size, tree: Tree, head: str, chunk_days: int, progress: Progress
             ) -> dict[str, Any]:
    """The site through the site file, the structure's meters' rollups, then keys and statistics."""
    from lingtan.core.site_model import import_site_file

    t0 = time.perf_counter()
    engine = get_engine(url)
    t = time.perf_counter()
    with engine.begin() as sa_conn:
        imported = import_site_file(sa_conn, site_file(tree, SITE_ID, size.years), "benchmark", size.end)
    import_s = time.perf_counter() - t
    engine.dispose()
    progress(f"site {SITE_ID}: {imported.meters} meters and {imported.structure_nodes} structure nodes"
             f" imported in {import_s:.1f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_structure_generation (params jsonb NOT NULL, started_at timestamptz"
                     " NOT NULL DEFAULT now(), finished_at timestamptz, report jsonb)")
        conn.execute("INSERT INTO bench_structure_generation (params) VALUES (%s)",
                     (psycopg.types.json.Jsonb(wanted_params(size, head)),))
        names = [f.name for f in Leaf.__dataclass_fields__.values()]
        conn.execute("CREATE TABLE bench_structure_leaves (sid int PRIMARY KEY, meter_id text NOT NULL,"
                     " quantity text NOT NULL, base float8, night float8, peak float8, weekend float8,"
                     " noise float8, e0 float8)")
        with conn.cursor() as cur, cur.copy(f"COPY bench_structure_leaves ({', '.join(names)})"
                                            " FROM STDIN") as copy:
            for leaf in tree.leaves:
                copy.write_row([getattr(leaf, n) for n in names])
        conn.execute("CREATE TABLE bench_structure_edges (depth int NOT NULL, parent text NOT NULL,"
                     " child text NOT NULL, coef float8 NOT NULL, loss float8 NOT NULL)")
        with conn.cursor() as cur, cur.copy("COPY bench_structure_edges FROM STDIN") as copy:
            for edge in tree.edges:
                copy.write_row(edge)
        # Running counter totals between chunks, from each meter's first reading (e0).
        conn.execute("CREATE TABLE bench_structure_totals (meter_id text, quantity text, total float8,"
                     " PRIMARY KEY (meter_id, quantity))")
        conn.execute("INSERT INTO bench_structure_totals SELECT meter_id, quantity, e0"
                     " FROM bench_structure_leaves")
        conn.execute("INSERT INTO bench_structure_totals SELECT DISTINCT ON (parent) parent, %s,"
                     " round(1e4 + 1e6 * (abs(hashtext(parent)) %% 1000) / 1000.0)"
                     " FROM bench_structure_edges", (ENERGY,))
        for table in ("bench_structure_leaves", "bench_structure_edges", "bench_structure_totals"):
            conn.execute(f"ANALYZE {table}")
        # Loading into tables without their unique keys and building the keys afterwards is several
        # times faster than maintaining the B-trees row by row; the keys come back identical.
        keys = [k for k in key_constraints(conn) if k[0] in TABLES]
        for table, name, _ in keys:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET temp_buffers = '512MB'")
        conn.execute("SET synchronous_commit = off")
        depths = sorted({e[0] for e in tree.edges}, reverse=True)
        quarters = size.days * QUARTERS_PER_DAY
        step = chunk_days * QUARTERS_PER_DAY
        series = len(tree.leaves) + len({e[1] for e in tree.edges})
        total = series * quarters
        progress(f"generating {total:,} quarter-hour rows ({series} counters × {quarters:,} quarters) and"
                 f" the hour and day rollups, {chunk_days} days per transaction")
        rows = 0
        for k0 in range(0, quarters, step):
            k1 = min(k0 + step, quarters)
            with conn.transaction():
                for statement in chunk_statements(k0, k1, size.start, depths):
                    conn.execute(statement)
            rows += series * (k1 - k0)
            elapsed = time.perf_counter() - t0
            progress(f"  day {k1 // QUARTERS_PER_DAY:>4}/{size.days}: {rows:,} rows"
                     f" ({rows / elapsed:,.0f}/s, eta {elapsed / rows * (total - rows):,.0f} s)")
        conn.execute("SET maintenance_work_mem = '1GB'")
        for table, name, definition in keys:
            t = time.perf_counter()
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
            progress(f"  built {table}.{name} in {time.perf_counter() - t:.0f} s")
        for table in (*TABLES, "sites", "meters", "site_structures"):
            t = time.perf_counter()
            conn.execute(f"VACUUM (ANALYZE) {table}")
            progress(f"  vacuum analyze {table} in {time.perf_counter() - t:.0f} s")
        seconds = time.perf_counter() - t0
        report = {"seconds": round(seconds, 1), "site_import_seconds": round(import_s, 2),
                  "rows_15m": rows, "counters": series, "database_bytes": database_bytes(conn)}
        conn.execute("UPDATE bench_structure_generation SET finished_at = now(), report = %s",
                     (psycopg.types.json.Jsonb(report),))
    progress(f"generated in {seconds:,.0f} s")
    return report


def table_bytes(conn: psycopg.Connection) -> dict[str, int]:
    return {t: int(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]) for t in TABLES}


def environment(url: str) -> dict[str, Any]:
    import platform

    with psycopg.connect(url) as conn:
        settings = dict(conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (["shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather",
              "jit", "random_page_cost"],),
        ).fetchall())
        return {"postgresql": conn.info.parameter_status("server_version"), "server_settings": settings,
                "python": platform.python_version(), "psycopg": psycopg.__version__, "cpus": os.cpu_count(),
                "machine": platform.platform(), "database_bytes": database_bytes(conn),
                "table_bytes": table_bytes(conn)}


# ---------------------------------------------------------------------------------------------
# is the generated data what the product would have stored?


def verify_rollups(url: str, size: Size, tree: Tree) -> list[Check]:
    """Re-materialise a sample of hour and day buckets with the refresher's own SQL
    (``rollup_from_level.sql`` through ``rollup_upsert.sql``) from the level below, compare, roll back.

    Sample: the incomer, a line, an equipment meter and the production counter, two days (the
    first and one in the middle)."""
    picks = [(tree.meters[0]["id"], ENERGY), (f"em-{tree.nodes[-1]['parent']}", ENERGY),
             (tree.leaves[0].meter_id, ENERGY), (tree.leaves[-1].meter_id, PRODUCTION)]
    days = [size.start, size.start + timedelta(days=size.days // 2)]
    columns = "count, min, max, avg, first, last, delta, covered, gap_delta"
    widths = {table: width for table, width, _ in LEVELS}
    sources = {table: source for table, _, source in LEVELS}

    def snapshot(conn: psycopg.Connection) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        out = {}
        for table in ("readings_1h", "readings_1d"):
            for m, q in picks:
                for day in days:
                    for row in conn.execute(
                            f"SELECT bucket, {columns} FROM {table} WHERE meter_id = %s AND quantity = %s"
                            " AND bucket >= %s AND bucket < %s", (m, q, day, day + timedelta(days=1))):
                        out[(table, m, q, row[0])] = tuple(row[1:])
        return out

    with psycopg.connect(url) as conn:
        ours = snapshot(conn)
        try:
            for table in ("readings_1h", "readings_1d"):
                width = widths[table]
                keys = sorted({(m, q, day + width * i) for m, q in picks for day in days
                               for i in range(int(timedelta(days=1) / width))})
                conn.execute(_UPSERT.format(table=table, select=_FROM_LEVEL.format(source=sources[table])),
                             {"meters": [k[0] for k in keys], "quantities": [k[1] for k in keys],
                              "buckets": [k[2] for k in keys], "width": width})
            theirs = snapshot(conn)
        finally:
            conn.rollback()
    names = columns.split(", ")
    diffs = []
    for key in sorted(set(ours) | set(theirs), key=str):
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            diffs.append(f"{key}: {'missing in generated' if a is None else 'not re-materialised'}")
            continue
        diffs += [f"{key} {n}: generated {x!r}, rollup SQL {y!r}"
                  for n, x, y in zip(names, a, b, strict=True) if not _close(x, y, 1e-9)]
    detail = (f"{len(ours)} hour and day buckets of {len(picks)} counters × {len(days)} days equal"
              if not diffs else f"{len(diffs)} differences, e.g. {'; '.join(diffs[:3])}")
    return [Check("hour/day rollups = rollup SQL", not diffs and bool(ours), detail)]


def verify_counts(url: str, size: Size, counters: int) -> list[Check]:
    """Every level holds every counter's every quarter, and the levels agree on the energy."""
    expected = counters * size.days * QUARTERS_PER_DAY * 15
    checks = []
    with psycopg.connect(url) as conn:
        n, d = conn.execute("SELECT coalesce(sum(count), 0), sum(delta) FROM readings_1d").fetchone()
        checks.append(Check("readings_1d counts", int(n) == expected,
                            f"sum(count) {int(n):,}, expected {expected:,} minute readings"))
        n2, d2 = conn.execute("SELECT coalesce(sum(count), 0), sum(delta) FROM readings_1h").fetchone()
        checks.append(Check("readings_1h = readings_1d", int(n2) == int(n) and _close(d, d2, 1e-9),
                            f"sum(count) {int(n2):,}, sum(delta) {d2:,.2f} against {d:,.2f}"))
    return checks


# ---------------------------------------------------------------------------------------------
# the baseline: every node's electricity in one statement, straight from the coarsest tiles


@dataclass
class Forms:
    """Every node's electricity as a signed combination of counters, as the structure resolves it."""

    nodes: list[str]
    n: list[int]
    m: list[str]
    q: list[str]
    c: list[float]


def electricity_forms(conn: sa.Connection, site_id: str) -> Forms:
    from lingtan.core.structure import load_structure, resolve

    forms = resolve(load_structure(conn, site_id)).forms("electricity")
    out = Forms(list(forms), [], [], [], [])
    for i, form in enumerate(forms.values()):
        for (meter, quantity), coef in form.items():
            out.n.append(i)
            out.m.append(meter)
            out.q.append(quantity)
            out.c.append(coef)
    return out


def baseline_sql(a: datetime, b: datetime) -> tuple[str, dict[str, Any]]:
    """Each distinct counter summed once over the window's tiles (days, then hours, quarters,
    minutes at ragged edges — ``lingtan.core.counters.tiles``), then Σ coefficient × energy per node."""
    params: dict[str, Any] = {}
    branches = []
    for i, (table, lo, hi) in enumerate(tiles(a, b)):
        params[f"a{i}"], params[f"b{i}"] = lo, hi
        branches.append(f"SELECT r.delta + r.gap_delta AS v FROM {table} r WHERE r.meter_id = s.m"
                        f" AND r.quantity = s.q AND r.bucket >= :a{i} AND r.bucket < :b{i}")
    sql = ("WITH k AS (SELECT * FROM unnest(CAST(:n AS int[]), CAST(:m AS text[]), CAST(:q AS text[]),"
           " CAST(:c AS float8[])) AS k(n, m, q, c)),"
           " s AS (SELECT DISTINCT m, q FROM k),"
           " e AS (SELECT s.m, s.q, sum(t.v) AS v FROM s"
           f"   CROSS JOIN LATERAL ({' UNION ALL '.join(branches)}) t GROUP BY 1, 2)"
           " SELECT k.n, sum(k.c * e.v) FROM k JOIN e ON e.m = k.m AND e.q = k.q GROUP BY k.n")
    return sql, params


def baseline_call(forms: Forms, a: datetime, b: datetime) -> Callable[[sa.Connection], dict[str, float]]:
    sql, params = baseline_sql(a, b)
    statement = sa.text(sql)

    def run(conn: sa.Connection) -> dict[str, float]:
        rows = conn.execute(statement, {**params, "n": forms.n, "m": forms.m, "q": forms.q, "c": forms.c})
        return {forms.nodes[i]: float(v) for i, v in rows}
    return run


# ---------------------------------------------------------------------------------------------
# the tree call, and where its time goes


def tree_call(a: datetime, b: datetime, now: datetime) -> Callable[[sa.Connection], Any]:
    from lingtan.core.structure_kpis import structure_kpis

    return lambda conn: structure_kpis(conn, SITE_ID, a, b, now)


# What structure_kpis calls, wrapped from the outside (the module's own names are swapped for the
# duration of the profiled calls; the engine's code is not changed).
PARTS = (
    ("load_site_model", "lingtan.core.structure_kpis", "load_site_model"),
    ("load_structure", "lingtan.core.structure_kpis", "load_structure"),
    ("resolve", "lingtan.core.structure_kpis", "resolve"),
    ("window_kpis_many (site figures)", "lingtan.core.structure_kpis", "window_kpis_many"),
    ("counter_energy_many (node counters)", "lingtan.core.structure_kpis", "counter_energy_many"),
    ("structure_cache.summed (whole days: bands, demand)", "lingtan.core.structure_cache", "summed"),
    ("tariff.node_profiles (other quarters: bands, demand)", "lingtan.core.tariff", "node_profiles"),
    ("_node × nodes (Python assembly)", "lingtan.core.structure_kpis", "_node"),
    ("_levels (coverage by level)", "lingtan.core.structure_kpis", "_levels"),
)


@contextmanager
def wrapped(spent: dict[str, float]) -> Iterator[None]:
    import importlib

    saved = []
    for label, module_name, attr in PARTS:
        module = importlib.import_module(module_name)
        original = getattr(module, attr)

        def wrapper(*args: Any, _f: Callable[..., Any] = original, _label: str = label, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return _f(*args, **kw)
            finally:
                spent[_label] = spent.get(_label, 0.0) + (time.perf_counter() - t) * 1000
        setattr(module, attr, wrapper)
        saved.append((module, attr, original))
    try:
        yield
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)


OTHER = "other (forms, keys, split_by_year, notes)"


@dataclass
class Instrumented:
    parts: list[dict[str, Any]]  # median ms of each part of the call
    statements: list[dict[str, Any]]  # the slowest SQL statements of the last call
    slowest: tuple[str, Any]  # the slowest statement of the last call and its parameters


def instrumented(engine: Any, conn: sa.Connection, fn: Callable[[Any], Any], runs: int,
                 top: int = 8) -> Instrumented:
    """``runs`` more calls with what ``structure_kpis`` calls timed from the outside (``PARTS``;
    'other' is the call less the parts) and every SQL statement timed with its parameters."""
    from sqlalchemy import event

    per_run: list[dict[str, float]] = []
    stats: dict[str, list[float]] = {}
    seen: list[tuple[float, str, Any]] = []
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((time.perf_counter() - started.pop(), statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(runs):
            spent: dict[str, float] = {}
            seen.clear()
            with wrapped(spent):
                t = time.perf_counter()
                fn(conn)
                total = (time.perf_counter() - t) * 1000
                conn.rollback()
            spent[OTHER] = total - sum(spent.values())
            spent["total"] = total
            per_run.append(spent)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    labels = [label for label, _, _ in PARTS] + [OTHER, "total"]
    middle = statistics.median(r["total"] for r in per_run)
    medians = {label: statistics.median(r.get(label, 0.0) for r in per_run) for label in labels}
    parts = [{"part": label, "ms": round(ms, 1), "share": round(ms / middle, 3) if middle else None}
             for label, ms in medians.items()]
    for seconds, statement, _ in seen:
        entry = stats.setdefault(" ".join(statement.split()), [0, 0.0])
        entry[0] += 1
        entry[1] += seconds * 1000
    ordered = sorted(stats.items(), key=lambda kv: -kv[1][1])
    statements = [{"statement": k, "calls": int(n), "ms": round(ms, 1)} for k, (n, ms) in ordered[:top]]
    sql_ms = sum(ms for _, ms in stats.values())
    last = per_run[-1]["total"]
    statements.append({"statement": f"(all {len(seen)} statements; the call took {last:,.1f} ms,"
                       f" {last - sql_ms:,.1f} ms of it outside SQL)", "calls": 0, "ms": round(sql_ms, 1)})
    _, statement, parameters = max(seen, key=lambda x: x[0])
    return Instrumented(parts, statements, (statement, parameters))


def explain(conn: sa.Connection, statement: str, parameters: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement as the driver ran it: where inside it the time goes."""
    with conn.connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = [r[0] for r in cur.fetchall()]
    conn.rollback()
    return plan


def python_profile(conn: sa.Connection, fn: Callable[[Any], Any], top: int = 12) -> list[str]:
    """One more call under cProfile: the functions with the most own time."""
    prof = cProfile.Profile()
    prof.enable()
    fn(conn)
    prof.disable()
    conn.rollback()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return [line.rstrip().replace(root, "").replace(".venv/lib/python3.11/site-packages/", "")
            for line in lines[start:] if line.strip()][: top + 1]


# ---------------------------------------------------------------------------------------------
# correctness of the tree answer


def check_tree(label: str, answer: Any, base: dict[str, float], tree_nodes: int) -> list[Check]:
    nodes = {n.id: n for n in answer.nodes}
    diffs = []
    for nid, want in base.items():
        got = nodes[nid].energy.get("electricity") if nid in nodes else None
        if got is None or not _close(got.value, want, 1e-9):
            diffs.append(f"{nid}: tree {getattr(got, 'value', None)!r}, baseline {want!r}")
    checks = [Check(f"{label}: electricity = baseline",
                    not diffs and len(base) == len(nodes) == tree_nodes,
                    f"{len(nodes)} nodes equal within 1e-9" if not diffs and len(base) == len(nodes)
                    else f"{len(diffs)} differences ({len(nodes)} nodes, baseline {len(base)}), "
                         f"e.g. {'; '.join(diffs[:3])}")]
    parents = [n for n in answer.nodes if n.children]
    unmetered = [u for n in parents for u in n.unmetered if u.carrier == "electricity"]
    flagged = sum(u.flagged for u in unmetered)
    ok = len(unmetered) == len(parents) and all((u.value.value or 0) > 0 for u in unmetered)
    checks.append(Check(f"{label}: unmetered energy", ok,
                        f"{len(unmetered)} of {len(parents)} parents with unmetered electricity > 0,"
                        f" {flagged} flagged above {answer.unmetered_threshold_pct:g} %"))
    bad = []
    for n in answer.nodes:
        elec = n.energy.get("electricity")
        named = {b.band for b in n.cost_by_band}
        kwh = sum(b.kwh for b in n.cost_by_band)
        if (elec is None or len(named) != BANDS or not _close(kwh, elec.value, 1e-9)
                or n.demand.kw.value is None):
            bad.append(n.id)
    checks.append(Check(f"{label}: bands and demand", not bad,
                        f"every node: {BANDS} bands adding up to its electricity, a maximum demand"
                        if not bad else f"{len(bad)} nodes without, e.g. {', '.join(bad[:3])}"))
    return checks


# ---------------------------------------------------------------------------------------------
# importing a site file with 300 meters and its structure


def delete_site(url: str, site_id: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM site_structures WHERE site_id = %s", (site_id,))
        conn.execute("DELETE FROM meters WHERE site_id = %s", (site_id,))
        conn.execute("DELETE FROM sites WHERE id = %s", (site_id,))


def import_runs(url: str, meters: int, runs: int, years: list[int], progress: Progress
                ) -> tuple[dict[str, Any], list[Check]]:
    """``apply_site_file`` of a new site, then of the same file again (nothing changes), ``runs``
    times each; the site is deleted before each first import and at the end."""
    from lingtan.core.site_model import apply_site_file

    tree = build_tree(meters, IMPORT_PREFIX)
    doc = site_file(tree, IMPORT_SITE_ID, years)
    first, again, checks = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "site.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
        size = path.stat().st_size
        try:
            for i in range(runs):
                delete_site(url, IMPORT_SITE_ID)
                t = time.perf_counter()
                created = apply_site_file(url, path, "benchmark")
                first.append(time.perf_counter() - t)
                t = time.perf_counter()
                unchanged = apply_site_file(url, path, "benchmark")
                again.append(time.perf_counter() - t)
                progress(f"  site import {i + 1}/{runs}: new site {first[-1]:.2f} s,"
                         f" unchanged {again[-1]:.2f} s")
                if i == 0:
                    checks.append(Check("site import", created.site_created and len(created.meters_created)
                                        == meters and created.structure_nodes == len(tree.nodes)
                                        and created.structure_changed and not unchanged.site_created
                                        and not unchanged.structure_changed and not unchanged.meters_created,
                                        f"created {len(created.meters_created)} meters and a structure of"
                                        f" {created.structure_nodes} nodes; the second import changed"
                                        " nothing"))
        finally:
            delete_site(url, IMPORT_SITE_ID)
    result = {"meters": meters, "nodes": len(tree.nodes), "virtual_meters": len(tree.virtual),
              "file_bytes": size, "new_site_s": [round(x, 3) for x in first],
              "unchanged_s": [round(x, 3) for x in again],
              "new_site_p50_s": round(statistics.median(first), 3), "new_site_max_s": round(max(first), 3),
              "unchanged_p50_s": round(statistics.median(again), 3), "unchanged_max_s": round(max(again), 3),
              "target_s": TARGET_IMPORT_S, "target_met": max(first) < TARGET_IMPORT_S}
    return result, checks


# ---------------------------------------------------------------------------------------------


def month_window(size: Size, month: str | None) -> tuple[datetime, datetime]:
    """The calendar month asked for, else the last whole one in the data (local midnights)."""
    if month:
        y, m = (int(x) for x in month.split("-"))
    else:
        last = (size.end - timedelta(days=1))
        y, m = last.year, last.month
        if datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=CST) > size.end:
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    a = datetime(y, m, 1, tzinfo=CST)
    b = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=CST)
    if a < size.start or b > size.end:
        raise SystemExit(f"month {y}-{m:02d} is not inside the data"
                         f" ({size.start:%Y-%m-%d} – {size.end:%Y-%m-%d})")
    return a, b


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def render(config: dict[str, Any], env: dict[str, Any], generation: dict[str, Any],
           timings: list[tuple[Timing, Timing]], parts: dict[str, list[dict[str, Any]]],
           statements: dict[str, list[dict[str, Any]]], pyprof: dict[str, list[str]],
           plans: dict[str, list[str]], imports: dict[str, Any], checks: list[Check]) -> str:
    reused = "reused" if generation.get("reused") else "generated now"
    lines = [
        "",
        f"Lingtan structure benchmark: site {SITE_ID}, {config['meters']} meters, {config['nodes']} nodes"
        f" (5 levels, {config['virtual_meters']} virtual meters), 15-minute data {config['start'][:10]} –"
        f" {config['end'][:10]}",
        f"database {config['database']}: {_gb(env['database_bytes'])},"
        f" {generation['rows_15m']:,} quarter-hour rows ({reused};"
        f" generation took {generation['seconds']:,.0f} s)",
        "  " + ", ".join(f"{t} {_gb(n)}" for t, n in env["table_bytes"].items()),
        f"PostgreSQL {env['postgresql']} (shared_buffers {env['server_settings'].get('shared_buffers')},"
        f" work_mem {env['server_settings'].get('work_mem')}), Python {env['python']}, {env['cpus']} CPUs",
        "",
        f"{'call':<52}{'runs':>6}{'p50 ms':>11}{'p95 ms':>11}{'tree/base p95':>15}",
        "-" * 95,
    ]
    for tree, base in timings:
        ratio = tree.p95 / base.p95 if base.p95 > 0 else float("inf")
        lines += [
            f"{tree.label}",
            f"{'  tree: ' + tree.path:<52.52}{tree.runs:>6}{tree.p50:>11,.1f}{tree.p95:>11,.1f}"
            f"{ratio:>14,.0f}×",
            f"{'  baseline: ' + base.path:<52.52}{base.runs:>6}{base.p50:>11,.1f}{base.p95:>11,.1f}",
        ]
    month = timings[0][0]
    lines += ["", f"target: month tree p95 < {TARGET_MONTH_MS:.0f} ms: {month.p95:,.1f} ms "
                  f"{'PASS' if month.p95 < TARGET_MONTH_MS else 'MISS'}",
              f"target: site file import ({imports['meters']} meters, {imports['nodes']} nodes) < "
              f"{TARGET_IMPORT_S:.0f} s: new site p50 {imports['new_site_p50_s']:.2f} s, max"
              f" {imports['new_site_max_s']:.2f} s {'PASS' if imports['target_met'] else 'MISS'};"
              f" unchanged re-import p50 {imports['unchanged_p50_s']:.2f} s"]
    for (label, rows), n in zip(parts.items(), (config["profile_runs"], config["year_profile_runs"]),
                                strict=False):
        lines += ["", f"where the time of the tree call goes (median of {n} calls): {label}"]
        lines += [f"  {r['part']:<54}{r['ms']:>10,.1f} ms{(r['share'] or 0) * 100:>6.0f} %" for r in rows]
    for label, rows in statements.items():
        lines += ["", f"SQL statements of one tree call (the last of those): {label}"]
        lines += [f"  {r['ms']:>9,.1f} ms {r['calls']:>4}× {r['statement'][:100]}" if r["calls"]
                  else f"  {r['ms']:>9,.1f} ms       {r['statement']}" for r in rows]
    for label, rows in pyprof.items():
        lines += ["", f"Python functions by own time, one tree call under cProfile: {label}"]
        lines += [f"  {r}" for r in rows]
    for label, plan in plans.items():
        lines += ["", f"plan of the slowest statement of one tree call: {label}"]
        lines += [f"  {r}" for r in plan]
    lines += ["", "correctness"]
    lines += [f"  {'ok  ' if c.ok else 'FAIL'} {c.name:<40} {c.detail}" for c in checks]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.structure", description=__doc__.split("\n")[0])
    p.add_argument("--meters", type=int, default=DEFAULT_SIZE[0],
                   help=f"physical meters of the site (≥ {fixed_meters()}; default %(default)s)")
    p.add_argument("--days", type=int, default=DEFAULT_SIZE[1], help="days of 15-minute data (≥ 31)")
    p.add_argument("--dsn", "--database-url", dest="dsn",
                   default=os.environ.get("LINGTAN_BENCH_DATABASE_URL", DEFAULT_URL),
                   help="server (any database on it; default: $LINGTAN_BENCH_DATABASE_URL or %(default)s)")
    p.add_argument("--database", default=None,
                   help=f"database to generate into and keep (default: {DEFAULT_DATABASE} for the default"
                        f" size, {DEFAULT_DATABASE}_<meters>m_<days>d for others)")
    p.add_argument("--regenerate", action="store_true",
                   help="drop and generate the database even when it holds the requested size")
    p.add_argument("--month", default=None, help="YYYY-MM: the month window (default: the last of the data)")
    p.add_argument("--runs", type=int, default=30, help="timed month tree calls (default: %(default)s)")
    p.add_argument("--year-runs", type=int, default=3,
                   help="timed whole-span tree calls (default: %(default)s)")
    p.add_argument("--baseline-runs", type=int, default=30,
                   help="timed baseline statements per window (default: %(default)s)")
    p.add_argument("--profile-runs", type=int, default=3,
                   help="month calls with the parts and statements timed, after the timed runs"
                        " (default: %(default)s)")
    p.add_argument("--year-profile-runs", type=int, default=1,
                   help="the same for the whole span (default: %(default)s)")
    p.add_argument("--import-meters", type=int, default=300, help="meters of the imported site file")
    p.add_argument("--import-runs", type=int, default=3, help="site file imports (default: %(default)s)")
    p.add_argument("--chunk-days", type=int, default=15, help="days generated per transaction")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    if args.meters < fixed_meters() or args.import_meters < fixed_meters():
        p.error(f"--meters and --import-meters must be at least {fixed_meters()}"
                " (the levels above the equipment)")
    if args.days < 31:
        p.error("--days must be at least 31 (a month window)")
    if args.database is None:
        args.database = database_name(args.meters, args.days)
    for name in ("runs", "year_runs", "baseline_runs", "profile_runs", "year_profile_runs", "import_runs",
                 "chunk_days"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    size = Size(args.meters, args.days, END)
    tree = build_tree(args.meters)
    url, generation = ensure_database(args.dsn, args.database, size, tree, args.regenerate, args.chunk_days,
                                      progress)
    counters = len(tree.leaves) + len({e[1] for e in tree.edges})
    env = environment(url)
    month = month_window(size, args.month)
    span = (size.start, size.end)
    config = {"meters": args.meters, "nodes": len(tree.nodes), "virtual_meters": len(tree.virtual),
              "days": args.days, "database": args.database, "start": size.start.isoformat(),
              "end": size.end.isoformat(), "month": [month[0].isoformat(), month[1].isoformat()],
              "server": _redact(args.dsn), "runs": args.runs, "year_runs": args.year_runs,
              "baseline_runs": args.baseline_runs, "profile_runs": args.profile_runs,
              "year_profile_runs": args.year_profile_runs,
              "code": {f: _file_version(f) for f in (
                  "lingtan/core/structure_kpis.py", "lingtan/core/structure.py", "lingtan/core/counters.py",
                  "lingtan/core/tariff.py", "lingtan/core/kpi.py", "lingtan/core/site_model.py")}}

    progress("checking the generated rollups against the rollup SQL on a sample")
    checks = verify_counts(url, size, counters) + verify_rollups(url, size, tree)

    span_label = "year" if args.days == 365 and size.start.month == 1 and size.start.day == 1 \
        else f"{args.days}-day span"
    # (label, window, timed runs, warm-up calls, instrumented calls, one call under cProfile)
    windows = [
        (f"month tree KPIs {month[0]:%Y-%m} ({(month[1] - month[0]).days} days)", month, args.runs, 3,
         args.profile_runs, True),
        (f"{span_label} tree KPIs {size.start:%Y-%m-%d} – {size.end:%Y-%m-%d}", span, args.year_runs, 1,
         args.year_profile_runs, False)]
    timings: list[tuple[Timing, Timing]] = []
    parts: dict[str, list[dict[str, Any]]] = {}
    statements: dict[str, list[dict[str, Any]]] = {}
    pyprof: dict[str, list[str]] = {}
    plans: dict[str, list[str]] = {}
    engine = get_engine(url)
    try:
        with engine.connect() as conn:
            forms = electricity_forms(conn, SITE_ID)
            conn.rollback()
            for label, (a, b), runs, warmup, profile_runs, profile in windows:
                fn = tree_call(a, b, size.end)
                progress(f"{label}: structure_kpis, {runs} runs")
                tree_t, answer = timed(conn, label, "lingtan.core.structure_kpis.structure_kpis", fn, runs,
                                       warmup, progress)
                progress(f"{label}: baseline, {args.baseline_runs} runs")
                base_t, base = timed(conn, label, "one SQL statement over the coarsest tiles",
                                     baseline_call(forms, a, b), args.baseline_runs, 3, progress)
                timings.append((tree_t, base_t))
                checks += check_tree(label.split(" (")[0], answer, base, len(tree.nodes))
                progress(f"{label}: where the time goes ({profile_runs} calls with the parts and the SQL"
                         " statements timed, EXPLAIN ANALYZE of the slowest statement"
                         f"{', one call under cProfile' if profile else ''})")
                measured = instrumented(engine, conn, fn, profile_runs)
                parts[label], statements[label] = measured.parts, measured.statements
                plans[label] = explain(conn, *measured.slowest)
                if profile:
                    pyprof[label] = python_profile(conn, fn)
    finally:
        engine.dispose()

    progress(f"site file import: {args.import_meters} meters with their structure, {args.import_runs} runs")
    imports, import_checks = import_runs(url, args.import_meters, args.import_runs, size.years, progress)
    checks += import_checks

    ok = all(c.ok for c in checks)
    print(render(config, env, generation, timings, parts, statements, pyprof, plans, imports, checks))
    result = {
        "benchmark": "structure",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config, "environment": env, "generation": generation,
        "timings": [{"call": t.label, "tree": t.as_dict(), "baseline": b.as_dict(),
                     "ratio_tree_to_baseline_p95": t.p95 / b.p95 if b.p95 else None} for t, b in timings],
        "target_month_ms": TARGET_MONTH_MS, "month_target_met": timings[0][0].p95 < TARGET_MONTH_MS,
        "breakdown": parts, "statements": statements, "python_profile": pyprof, "slowest_plan": plans,
        "site_import": imports,
        "checks": [asdict(c) for c in checks],
        "correct": ok,
    }
    return finish(args.output, result, ok)


if __name__ == "__main__":
    sys.exit(main())
