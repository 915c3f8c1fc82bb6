"""Measured savings of a retrofit project against the plain energy query of its boundary.

Run:  .venv/bin/python -m benchmarks.savings [--meters 300] [--days 1096] [--dsn URL] [--runs N]

The site and data are the ``structure`` benchmark's, made by its generator and kept in the same
database (``lingtan_bench_structure_<M>m_<D>d``; 300 meters × 1,096 days of 15-minute rollups ending
at the China midnight of 2026-01-01, so 2023, 2024 and 2025). On it: one IPMVP option B project whose
boundary is the structure node covering the number of meters nearest to ``--cover`` (300: the root
at the default size), electricity per day, working days entered per day as the variable
(``--variable production``: the site's production counter), a baseline of the first two years less
a month, that month as the installation period and the last year as the reporting period.

Timed in interleaved rounds on one connection, each call in its own transaction, after warm-up:

1. the baseline: ``structure_series.node_series`` of the node over the whole span at ``1d`` (the
   plain energy query of the boundary, as the dashboard draws it);
2. the counter query under it: ``counters.counter_series`` of the node's electricity meters over the
   span at ``1d``;
3. ``savings_service.project_savings``, as ``GET /sites/{id}/projects/{pid}/savings`` calls it.

p50 and p95 and their ratios to the baseline are printed and written to
``benchmarks/results/savings.json``, with where one more savings call's time goes (the functions it
calls, timed from outside, and its SQL statements). The issue's target — p95 of the savings call
< 500 ms — is reported as PASS or MISS. The exit status is non-zero only when a check fails: the
points' energy (baseline and reporting) equals the plain query's over the same days within 10⁻⁶
relative, no day is left out, the model is adequate (otherwise the call stops before the savings
and would be timed on a shorter path), and the answer's reporting energy is the points'.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from benchmarks.kpi import Timing, _file_version, _redact, statement_profile
from benchmarks.report import Check, Progress, finish
from benchmarks.structure import (
    DEFAULT_URL,
    END,
    SITE_ID,
    Size,
    build_tree,
    database_name,
    ensure_database,
    environment,
    fixed_meters,
)
from lingtan.kernel.db import get_engine

RESULTS = Path(__file__).resolve().parent / "results" / "savings.json"
TZ = ZoneInfo("Asia/Shanghai")
NOW = END  # the China midnight after the last day of data: every day of it has ended
PROJECT_ID = "bench-retrofit"
TARGET_P95_MS = 500.0  # one project's savings call, the target
REL = 1e-6


@dataclass
class Plan:
    node: str
    covered_meters: int
    form_meters: list[str]
    baseline: tuple[date, date]  # inclusive
    installation: tuple[date, date]
    reporting: tuple[date, date]


def subtree_meters(conn: sa.Connection) -> dict[str, int]:
    """Per node: the physical and virtual meters of its own and of every node below it."""
    from lingtan.core.structure import load_structure

    nodes = load_structure(conn, SITE_ID).nodes
    below: dict[str, list[str]] = {}
    own: dict[str, int] = {}
    for n in nodes:
        own[n.id] = len(n.meters)
        if n.parent is not None:
            below.setdefault(n.parent, []).append(n.id)

    def count(nid: str) -> int:
        return own[nid] + sum(count(c) for c in below.get(nid, []))

    return {nid: count(nid) for nid in own}


def plan(conn: sa.Connection, size: Size, cover: int, node: str | None) -> Plan:
    """The node and the windows: the last year (or the last third of a shorter span) reports, the
    30 days before it are the installation, the rest from the first day is the baseline."""
    from lingtan.core.structure import load_structure, resolve

    counts = subtree_meters(conn)
    chosen = node or min(counts, key=lambda n: (abs(counts[n] - cover), n))
    if chosen not in counts:
        raise SystemExit(f"--node {chosen!r} is not a node of {SITE_ID}")
    form = resolve(load_structure(conn, SITE_ID)).forms("electricity")[chosen]
    first = size.start.astimezone(TZ).date()
    end = size.end.astimezone(TZ).date()  # exclusive
    report_days = 365 if size.days >= 3 * 365 else size.days // 3
    rep = (end - timedelta(days=report_days), end - timedelta(days=1))
    inst = (rep[0] - timedelta(days=30), rep[0] - timedelta(days=1))
    return Plan(chosen, counts[chosen], sorted({m for m, _ in form}), (first, inst[0] - timedelta(days=1)),
                inst, rep)


def variable(kind: str, p: Plan) -> dict[str, Any]:
    """The production counter, or working days entered per day (1 Monday to Friday, 0 at weekends:
    the generated equipment runs at 50–80 % at weekends)."""
    if kind == "production":
        return {"name": "production", "source": "production"}
    days = [p.baseline[0] + timedelta(days=i) for i in range((p.reporting[1] - p.baseline[0]).days + 1)]
    return {"name": "working_day", "source": "entered",
            "values": [{"date": d.isoformat(), "value": 0.0 if d.weekday() >= 5 else 1.0} for d in days]}


def project_document(p: Plan, kind: str) -> dict[str, Any]:
    return {"projects": [{
        "id": PROJECT_ID, "name": "Benchmark retrofit (variable-speed drives)", "option": "B",
        "boundary": {"node": p.node, "carrier": "electricity"}, "resolution": "day",
        "baseline": {"start": p.baseline[0].isoformat(), "end": p.baseline[1].isoformat()},
        "installation": {"start": p.installation[0].isoformat(), "end": p.installation[1].isoformat()},
        "reporting": {"start": p.reporting[0].isoformat(), "end": p.reporting[1].isoformat()},
        "variables": [variable(kind, p)],
        "static_factors": ["two shifts, five days a week"],
        "claimed": {"energy_per_year": 100000.0, "source": "supplier's offer"}}]}


def store_project(url: str, p: Plan, kind: str) -> None:
    from lingtan.core.savings_schema import Savings
    from lingtan.core.savings_service import save_savings

    engine = get_engine(url)
    try:
        with engine.begin() as conn:
            save_savings(conn, SITE_ID, Savings.model_validate(project_document(p, kind)), "benchmark", NOW)
    finally:
        engine.dispose()


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=TZ)


@dataclass
class Call:
    label: str
    path: str
    short: str
    run: Callable[[sa.Connection], Any]


def calls(p: Plan, size: Size) -> list[Call]:
    from lingtan.core import counters, savings_service, structure_series
    from lingtan.core.structure_schema import QUANTITY

    a, z = size.start, size.end
    return [
        Call(f"baseline: node_series {p.node}, {size.days} days at 1d", "structure_series.node_series",
             "node_series",
             lambda conn: structure_series.node_series(conn, SITE_ID, p.node, a, z, "1d", NOW)),
        Call(f"counter_series of its {len(p.form_meters)} meter(s), 1d", "counters.counter_series",
             "counters",
             lambda conn: counters.counter_series(conn, p.form_meters, QUANTITY["electricity"], a, z, "1d")),
        Call("project_savings (option B, the node)", "savings_service.project_savings", "savings",
             lambda conn: savings_service.project_savings(conn, SITE_ID, PROJECT_ID, NOW)),
    ]


def rounds(conn: sa.Connection, cs: list[Call], runs: int, warmup: int, progress: Progress
           ) -> tuple[dict[str, Timing], dict[str, Any]]:
    """``warmup`` untimed rounds, then ``runs`` rounds of one call of each, each call in its own
    transaction, so the baseline and the calls share the machine's moments."""
    answers: dict[str, Any] = {}
    ms: dict[str, list[float]] = {c.label: [] for c in cs}
    for _ in range(warmup):
        for c in cs:
            c.run(conn)
            conn.rollback()
    for i in range(runs):
        for c in cs:
            t = time.perf_counter()
            answers[c.label] = c.run(conn)
            ms[c.label].append((time.perf_counter() - t) * 1000)
            conn.rollback()
        if (i + 1) % max(1, runs // 5) == 0:
            progress(f"  round {i + 1}/{runs}: "
                     + ", ".join(f"{c.short} {ms[c.label][-1]:,.0f} ms" for c in cs))
    return {c.label: Timing(c.label, c.path, runs, ms[c.label]) for c in cs}, answers


# ---------------------------------------------------------------------------------------------
# where the time goes


def _parts() -> list[tuple[Any, str, str]]:
    """(module, attribute, label): the functions a savings call goes through, looked up by the
    callers' own module names so a wrapper sees every call (times are inclusive and nest)."""
    from lingtan.core import kpi, savings_data, savings_service, series, structure_series

    return [
        (savings_service, "load_savings", "load_savings (the stored document)"),
        (savings_service, "load_site_model", "load_site_model"),
        (savings_service, "points", "savings_data.points (baseline, reporting)"),
        (savings_data, "node_series", "  structure_series.node_series"),
        (series, "kpi_series", "    series.kpi_series (node_series' buckets; production)"),
        (structure_series, "load_structure", "    load_structure"),
        (structure_series, "counter_series_many", "    counters.counter_series_many"),
        (savings_data, "daily_variables", "  savings_data.daily_variables"),
        (savings_service, "_fit", "_fit (OLS and the adequacy rules)"),
        (savings_service, "savings", "savings_math.savings"),
        (kpi, "window_kpis", "kpi.window_kpis (the reporting days' grid price)"),
        (savings_service, "_converted", "_converted (factors)"),
    ]


@contextmanager
def wrapped(spent: dict[str, list[float]]) -> Iterator[None]:
    saved = []
    for module, name, label in _parts():
        real = getattr(module, name)
        saved.append((module, name, real))

        def timer(*a: Any, _real: Any = real, _label: str = label, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return _real(*a, **k)
            finally:
                entry = spent.setdefault(_label, [0, 0.0])
                entry[0] += 1
                entry[1] += (time.perf_counter() - t) * 1000

        setattr(module, name, timer)
    try:
        yield
    finally:
        for module, name, real in saved:
            setattr(module, name, real)


def breakdown(engine: Any, conn: sa.Connection, c: Call, runs: int) -> dict[str, Any]:
    """``runs`` more savings calls with the parts timed (median of each), then one with every SQL
    statement timed."""
    per_run: list[dict[str, list[float]]] = []
    totals = []
    for _ in range(runs):
        spent: dict[str, list[float]] = {}
        with wrapped(spent):
            t = time.perf_counter()
            c.run(conn)
            totals.append((time.perf_counter() - t) * 1000)
            conn.rollback()
        per_run.append(spent)
    labels = [label for _, _, label in _parts()]
    parts = []
    for label in labels:
        ms = sorted(r.get(label, [0, 0.0])[1] for r in per_run)
        calls_n = per_run[0].get(label, [0, 0.0])[0]
        parts.append({"part": label, "calls": int(calls_n), "ms": round(ms[len(ms) // 2], 1)})
    return {"call_ms": round(sorted(totals)[len(totals) // 2], 1), "parts": parts,
            "statements": statement_profile(engine, conn, c.run, top=6)}


# ---------------------------------------------------------------------------------------------
# is the answer right?


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-12)


def check_answers(conn: sa.Connection, p: Plan, size: Size, answers: list[Any]) -> list[Check]:
    from lingtan.core.savings_data import points
    from lingtan.core.savings_service import load_savings
    from lingtan.core.structure import load_structure, resolve

    node, counter_rows, sav = answers
    plain = {q.time.astimezone(TZ).date(): q.energy.get("electricity") for q in node.points}
    checks = [Check("plain query has every day", len(plain) == size.days and None not in plain.values(),
                    f"{len(plain)} days of {size.days}")]
    coefs: dict[str, float] = {}
    for (m, _q), coef in resolve(load_structure(conn, SITE_ID)).forms("electricity")[p.node].items():
        coefs[m] = coefs.get(m, 0.0) + coef
    if len(coefs) == 1:  # one meter: the counter query's delta is the node's energy
        under = sum(r[1] for r in counter_rows) * next(iter(coefs.values()))
        over = sum(v or 0.0 for v in plain.values())
        checks.append(Check("node_series = its counter query", _close(under, over),
                            f"{over:,.3f} vs {under:,.3f} kWh over the span"))
    project = load_savings(conn, SITE_ID).projects[0]
    for name, window, (a, b) in (("baseline", project.baseline, p.baseline),
                                 ("reporting", project.reporting, p.reporting)):
        pts = points(conn, SITE_ID, project.boundary, project.variables, window, "day", "Asia/Shanghai", NOW)
        days = [a + timedelta(days=i) for i in range((b - a).days + 1)]
        want = sum(plain[d] or 0.0 for d in days)
        got = float(pts.energy.sum())
        checks.append(Check(f"{name} points = plain query",
                            _close(got, want) and len(pts.labels) == len(days),
                            f"{len(pts.labels)} points, {got:,.3f} vs {want:,.3f} kWh"))
        checks.append(Check(f"{name}: no day left out", not pts.left_out, f"{len(pts.left_out)} left out"))
        if name == "reporting":
            checks.append(Check("answer's reporting energy = points", sav.reporting_energy is not None
                                and _close(sav.reporting_energy, got),
                                f"{sav.reporting_energy} vs {got:,.3f} kWh"))
    fit = sav.fit
    checks.append(Check("model adequate (full path timed)", fit is not None and fit.adequate,
                        "no fit" if fit is None else
                        f"n {fit.n}, R² {fit.r2:.3f}, CV(RMSE) {fit.cv_rmse_pct:.1f} %, failed {fit.failed}"))
    checks.append(Check("savings stated", sav.avoided is not None and sav.converted is not None,
                        f"avoided {sav.avoided}, ± {sav.uncertainty}"))
    return checks


# ---------------------------------------------------------------------------------------------
# the report


def render(config: dict[str, Any], env: dict[str, Any], generation: dict[str, Any], timings: list[Timing],
           prof: dict[str, Any], checks: list[Check]) -> str:
    reused = "reused" if generation.get("reused") else "generated now"
    s = env["server_settings"]
    base = timings[0]
    sav = timings[-1]
    lines = [
        "",
        f"Lingtan measured-savings benchmark: site {SITE_ID}, {config['meters']} meters,"
        f" {config['days']} days {config['start'][:10]} – {config['end'][:10]}; project {PROJECT_ID}"
        " (option B) on node"
        f" {config['node']} ({config['covered_meters']} meters below it, electricity form"
        f" {config['form_meters']})",
        f"baseline {config['baseline'][0]} – {config['baseline'][1]}, installation"
        f" {config['installation'][0]} – {config['installation'][1]}, reporting"
        f" {config['reporting'][0]} – {config['reporting'][1]};"
        f" variable: {VARIABLES[config['variable']]}",
        f"database {config['database']}: {env['database_bytes'] / 1e9:.2f} GB ({reused}; generation took"
        f" {generation['seconds']:,.0f} s)",
        f"PostgreSQL {env['postgresql']} (shared_buffers {s.get('shared_buffers')}, work_mem"
        f" {s.get('work_mem')}, jit {s.get('jit')}), Python {env['python']}, {env['cpus']} CPUs",
        "",
        f"{'call':<48}{'runs':>5}{'p50 ms':>10}{'p95 ms':>10}{'p50 ÷ base':>12}{'p95 ÷ base':>12}",
        "-" * 97,
    ]
    for t in timings:
        lines.append(f"{t.label:<48.48}{t.runs:>5}{t.p50:>10,.1f}{t.p95:>10,.1f}"
                     f"{t.p50 / base.p50:>11.2f}×{t.p95 / base.p95:>11.2f}×")
    verdict = "PASS" if sav.p95 < TARGET_P95_MS else "MISS"
    lines += ["", f"target: project_savings p95 < {TARGET_P95_MS:.0f} ms: {verdict} ({sav.p95:,.1f} ms)", "",
              f"where a savings call's time goes (median of {config['profile_runs']} calls, the call"
              f" {prof['call_ms']:,.1f} ms; inclusive, indented parts are inside the one above)"]
    for part in prof["parts"]:
        lines.append(f"  {part['part']:<58.58}{part['calls']:>4}×{part['ms']:>10,.1f} ms")
    lines += ["", "SQL statements of one more call"]
    for st in prof["statements"]:
        n = f"{st['calls']}×" if st["calls"] else ""
        lines.append(f"  {st['ms']:>9,.1f} ms {n:>4} {st['statement'][:150]}")
    lines += ["", "correctness"]
    lines += [f"  {'ok  ' if c.ok else 'FAIL'} {c.name:<40} {c.detail}" for c in checks]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.savings", description=__doc__.split("\n")[0])
    p.add_argument("--meters", type=int, default=300,
                   help=f"physical meters of the structure site (≥ {fixed_meters()}; default %(default)s)")
    p.add_argument("--days", type=int, default=1096,
                   help="days of data ending 2026-01-01 (≥ 120; default %(default)s: 2023–2025)")
    p.add_argument("--cover", type=int, default=300,
                   help="the project's node: the one with the number of meters below it nearest this"
                        " (default %(default)s)")
    p.add_argument("--node", default=None, help="the project's node by id (overrides --cover)")
    p.add_argument("--variable", choices=("production", "working-days"), default="working-days",
                   help="the project's variable: working days entered per day, or the site's production"
                        " counter (default: %(default)s)")
    p.add_argument("--dsn", "--database-url", dest="dsn",
                   default=os.environ.get("LINGTAN_BENCH_DATABASE_URL", DEFAULT_URL),
                   help="server (any database on it; default: $LINGTAN_BENCH_DATABASE_URL or %(default)s)")
    p.add_argument("--database", default=None, help="the structure benchmark's database to use or generate")
    p.add_argument("--regenerate", action="store_true", help="generate the data even when it is there")
    p.add_argument("--runs", type=int, default=30, help="timed rounds (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default: %(default)s)")
    p.add_argument("--profile-runs", type=int, default=3,
                   help="savings calls with their parts timed (default: %(default)s)")
    p.add_argument("--chunk-days", type=int, default=15, help="days generated per transaction")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    if args.meters < fixed_meters():
        p.error(f"--meters must be at least {fixed_meters()} (the levels above the equipment)")
    if args.days < 120:
        p.error("--days must be at least 120 (a baseline, a month's installation and a reporting period)")
    for name in ("runs", "profile_runs", "chunk_days"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    args.database = args.database or database_name(args.meters, args.days)
    return args


VARIABLES = {"production": "the production counter", "working-days": "working days, entered per day"}
CODE = ("lingtan/core/savings_service.py", "lingtan/core/savings_data.py", "lingtan/core/structure_series.py",
        "lingtan/core/series.py", "lingtan/core/counters.py", "lingtan/core/baseline_model.py",
        "lingtan/core/kpi.py")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    size = Size(args.meters, args.days, END)
    url, generation = ensure_database(args.dsn, args.database, size, build_tree(args.meters), args.regenerate,
                                      args.chunk_days, progress)
    engine = get_engine(url)
    try:
        with engine.connect() as conn:
            pl = plan(conn, size, args.cover, args.node)
            conn.rollback()
        store_project(url, pl, args.variable)
        progress(f"project {PROJECT_ID} on node {pl.node} ({pl.covered_meters} meters below it)")
        env = environment(url)
        config = {"meters": args.meters, "days": args.days, "database": args.database,
                  "start": size.start.isoformat(), "end": size.end.isoformat(), "now": NOW.isoformat(),
                  "node": pl.node, "covered_meters": pl.covered_meters, "form_meters": pl.form_meters,
                  "baseline": [d.isoformat() for d in pl.baseline],
                  "installation": [d.isoformat() for d in pl.installation],
                  "reporting": [d.isoformat() for d in pl.reporting], "server": _redact(args.dsn),
                  "variable": args.variable, "runs": args.runs, "warmup": args.warmup,
                  "profile_runs": args.profile_runs,
                  "code": {f: _file_version(f) for f in CODE}}
        cs = calls(pl, size)
        with engine.connect() as conn:
            progress(f"timing {len(cs)} calls in {args.runs} interleaved rounds, {args.warmup} untimed first")
            timings, answers = rounds(conn, cs, args.runs, args.warmup, progress)
            progress(f"where the time goes: {args.profile_runs} savings calls with their parts timed, one"
                     " with its statements")
            prof = breakdown(engine, conn, cs[-1], args.profile_runs)
            checks = check_answers(conn, pl, size, [answers[c.label] for c in cs])
            conn.rollback()
    finally:
        engine.dispose()
    ordered = [timings[c.label] for c in cs]
    ok = all(c.ok for c in checks)
    print(render(config, env, generation, ordered, prof, checks))
    base = ordered[0]
    result = {
        "benchmark": "savings",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config, "environment": env, "generation": generation,
        "timings": [{"call": t.label, **t.as_dict(), "ratio_p50": t.p50 / base.p50,
                     "ratio_p95": t.p95 / base.p95} for t in ordered],
        "target_p95_ms": TARGET_P95_MS, "target_met": ordered[-1].p95 < TARGET_P95_MS,
        "breakdown": prof,
        "checks": [asdict(c) for c in checks],
        "correct": ok,
    }
    return finish(args.output, result, ok)


if __name__ == "__main__":
    sys.exit(main())
