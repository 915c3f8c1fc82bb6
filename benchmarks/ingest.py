"""Ingest throughput: the gateway's buffer → PostgreSQL path against a raw binary COPY.

Run:  .venv/bin/python -m benchmarks.ingest [--readings N] [--meters M] [--database-url URL]

On the given server a scratch database is created, migrated and dropped again. The same
generated readings are loaded three times into the emptied tables:

1. baseline: one psycopg binary ``COPY readings … FROM STDIN`` and one commit — the ceiling
   for moving these rows from Python into this table;
2. the gateway path with ``PostgresSink(refresh_rollups=False)``;
3. the same path with the rollups maintained: the sink marks buckets and the central
   refresher (``lingtan.core.rollup_worker``) runs beside the drain, as in ``lingtan ingest``.

The gateway path is ``DiskBuffer.append`` in collector-sized batches, then a drain identical to
``Gateway._sink_loop`` (peek → ``PostgresSink.write`` → ack) until the buffer is empty. After
each load the row count must equal N, and replaying batches through the sink must add nothing.
Figures are printed and written to ``benchmarks/results/ingest.json``. The exit status is
non-zero only when a correctness check fails: a missed throughput target is a result, not an
error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from benchmarks.report import Check, finish
from gateway.buffer import DiskBuffer
from gateway.config import SinkConfig
from gateway.drain import Drainer
from gateway.sinks.postgres import PostgresSink
from lingtan.core.rollup_worker import RollupWorker
from lingtan.core.rollups import LEVELS
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.migrate import upgrade
from lingtan.kernel.reading import Reading

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"

# The targets for the sink path on the 2-core reference machine.
TARGET_RATE = 150_000.0  # readings/s
TARGET_RATIO = 0.5  # of the raw COPY rate measured in the same run

# A three-phase panel meter's usual register set; enough columns to look like real traffic.
QUANTITIES = ("active_power", "active_energy_import", "voltage", "current", "power_factor")
# Minute-aligned, so every rollup level gets whole buckets as well as a partial last one.
START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
ROLLUP_TABLES = tuple(table for table, _, _ in LEVELS)
COPY_SQL = (
    "COPY readings (time, meter_id, quantity, value, quality) FROM STDIN (FORMAT BINARY)"
)
COPY_TYPES = ["timestamptz", "text", "text", "float8", "int2"]


class Progress:
    """Timestamped progress lines on stderr, so stdout holds only the result table."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# data


def generate(n: int, meters: int, seed: int) -> list[Reading]:
    """``n`` readings: every meter reports every quantity once a second, in poll order."""
    rng = random.Random(seed)
    ids = [f"bench-{i:04d}" for i in range(meters)]
    rated = [rng.choice((15.0, 30.0, 75.0, 160.0, 250.0, 400.0, 630.0)) for _ in ids]  # kW
    load = [r * rng.uniform(0.3, 0.8) for r in rated]
    energy = [rng.uniform(1e3, 2e6) for _ in ids]  # counters installed long ago
    pf = [rng.uniform(0.86, 0.98) for _ in ids]
    out: list[Reading] = []
    tick = 0
    while len(out) < n:
        # One datetime per poll cycle, as a collector stamps all points of a poll alike.
        t = START + timedelta(seconds=tick)
        tick += 1
        for i, meter in enumerate(ids):
            # Mean-reverting random walk: loads wander but stay within the meter's rating.
            p = load[i] + rng.gauss(0.0, 0.01 * rated[i]) + 0.02 * (0.55 * rated[i] - load[i])
            load[i] = p = min(max(p, 0.0), rated[i])
            energy[i] += p / 3600.0
            volts = rng.gauss(230.0, 1.5)  # phase voltage of a 400 V network
            pf[i] = min(0.999, max(0.5, pf[i] + rng.gauss(0.0, 0.002)))
            amps = p * 1000.0 / (3.0 * volts * pf[i])
            # Rounded to the resolutions panel meters' registers actually have.
            values = (round(p, 2), round(energy[i], 2), round(volts, 1), round(amps, 2),
                      round(pf[i], 3))
            out.extend(Reading(t, meter, q, v) for q, v in zip(QUANTITIES, values, strict=True))
    del out[n:]
    return out


def chunks(items: Sequence[Reading], size: int) -> Iterator[Sequence[Reading]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ---------------------------------------------------------------------------------------------
# database


def _with_database(url: str, name: str) -> str:
    return make_url(libpq_url(url)).set(database=name).render_as_string(hide_password=False)


def _redact(url: str) -> str:
    return make_url(libpq_url(url)).render_as_string(hide_password=True)


@contextlib.contextmanager
def scratch_database(server_url: str, progress: Progress) -> Iterator[str]:
    """A freshly migrated database on ``server_url``, dropped on exit whatever happened."""
    name = f"lingtan_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    progress(f"created scratch database {name}")
    try:
        upgrade(url)
        # Alembic ran through the cached SQLAlchemy engine; its pooled connections would
        # otherwise idle in the database for the whole run.
        get_engine(url).dispose()
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(libpq_url(server_url), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        progress(f"dropped scratch database {name}")


def reset(url: str) -> None:
    """Empty the tables and checkpoint, so no phase pays for the previous one's dirty pages."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE readings, {', '.join(ROLLUP_TABLES)}")
        # CHECKPOINT needs superuser or pg_checkpoint; without it the figures are just noisier.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def table_counts(url: str) -> dict[str, int]:
    """Rows in ``readings`` and, per rollup level, how many readings its buckets account for."""
    with psycopg.connect(url) as conn:
        counts = {"readings": conn.execute("SELECT count(*) FROM readings").fetchone()[0]}
        for table in ROLLUP_TABLES:
            row = conn.execute(f"SELECT coalesce(sum(count), 0) FROM {table}").fetchone()
            counts[table] = int(row[0])
    return counts


def environment(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        settings = dict(conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (["shared_buffers", "synchronous_commit", "fsync", "max_wal_size", "work_mem"],),
        ).fetchall())
        timescaledb = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        return {
            "postgresql": conn.info.parameter_status("server_version"),
            "timescaledb": timescaledb[0] if timescaledb else None,
            "server_settings": settings,
            "python": platform.python_version(),
            "psycopg": psycopg.__version__,
            "psycopg_impl": psycopg.pq.__impl__,
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
        }


# ---------------------------------------------------------------------------------------------
# measurements


@dataclass
class Phase:
    seconds: float
    rate: float  # readings/s


def phase(n: int, seconds: float) -> Phase:
    return Phase(seconds, n / max(seconds, 1e-9))


@dataclass
class GatewayRun:
    label: str
    refresh_rollups: bool
    append: Phase
    drain: Phase
    end_to_end: Phase
    batches: int
    peek_s: float
    write_s: float
    ack_s: float
    write_ms_p50: float
    write_ms_p95: float
    write_ms_max: float
    rollups_caught_up_s: float = 0.0
    checks: list[Check] = field(default_factory=list)


def raw_copy(url: str, readings: list[Reading], progress: Progress) -> Phase:
    """The baseline: the same rows, the same per-row conversion, straight into ``readings``."""
    step = max(1, len(readings) // 5)
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            copy.set_types(COPY_TYPES)
            for i, part in enumerate(chunks(readings, step)):
                for r in part:
                    copy.write_row((r.time, r.meter_id, r.quantity, r.value, int(r.quality)))
                progress(f"  raw COPY: {min((i + 1) * step, len(readings)):,} rows sent")
        conn.commit()
    return phase(len(readings), time.perf_counter() - t0)


def check_load(url: str, n: int, rollups: bool) -> list[Check]:
    counts = table_counts(url)
    checks = [Check("row count", counts["readings"] == n,
                    f"readings has {counts['readings']:,} rows, expected {n:,}")]
    if rollups:
        # Each level's counts must add up to N: a bucket refreshed before its last rows
        # arrived, or refreshed twice into the level above, would show here.
        bad = {t: c for t, c in counts.items() if t != "readings" and c != n}
        checks.append(Check("rollup counts", not bad,
                            "every level sums to N" if not bad else f"sum(count) differs: {bad}"))
    return checks


def check_replay(url: str, sink: PostgresSink, batches: list[Sequence[Reading]], n: int,
                 rollups: bool) -> list[Check]:
    """Deliver already-committed batches again, as the gateway does after a lost ack."""
    new = sum(sink.write(list(b)) for b in batches)
    replayed = sum(len(b) for b in batches)
    checks = [Check("replay", new == 0, f"{new} new rows from replaying {replayed:,} readings")]
    after = check_load(url, n, rollups)
    for c in after:
        c.name = f"{c.name} after replay"
    return checks + after


def gateway_path(url: str, readings: list[Reading], *, rollups: bool, append_batch: int,
                 sink_batch: int, buffer_dir: Path, progress: Progress,
                 concurrent: bool = False) -> GatewayRun:
    """Append then drain; or, ``concurrent``, as a running gateway does: collectors append
    while the drain commits, timed from the first append to the last commit."""
    n = len(readings)
    label = ("rollups on" if rollups else "rollups off") + (", concurrent" if concurrent else "")
    buffer = DiskBuffer(buffer_dir / f"buffer-{label.replace(' ', '-').replace(',', '')}.db")
    sink = PostgresSink(url, refresh_rollups=rollups)
    try:
        report_every = max(1, n // 5)
        next_report = report_every
        written_box: list[int] = []
        write_times: list[float] = []

        def write_rows(rows: list) -> int:  # type: ignore[type-arg]
            a = time.perf_counter()
            new = sink.write_rows(rows)
            write_times.append(time.perf_counter() - a)
            written_box.append(new)
            return new

        drainer = Drainer(buffer, write_rows, batch=sink_batch)
        # the central refresher beside the drain, as `lingtan ingest` runs it: readings first
        refresher = RollupWorker(url, every=1.0, defer=drainer.backlog) if rollups else None
        t_start = time.perf_counter()
        if concurrent:
            drainer.start()
            if refresher:
                refresher.start()
        t0 = time.perf_counter()
        for done, part in enumerate(chunks(readings, append_batch), start=1):
            buffer.append(list(part))
            if done * append_batch >= next_report:
                progress(f"  {label}: appended {min(done * append_batch, n):,} to the buffer")
                next_report += report_every
        append = phase(n, time.perf_counter() - t0)

        # The drain (prefetching reader, committing writer) and the central rollup refresher.
        t0 = t_start if concurrent else time.perf_counter()
        if not concurrent:
            drainer.start()
            if refresher:
                refresher.start()
        next_report = report_every
        while buffer.pending() > 0 or drainer.delivered < n:
            if drainer.last_error:
                raise RuntimeError(f"drain failed: {drainer.last_error}")
            if drainer.delivered >= next_report:
                rate = drainer.delivered / (time.perf_counter() - t0)
                progress(f"  {label}: drained {drainer.delivered:,} ({rate:,.0f} readings/s so far)")
                next_report += report_every
            time.sleep(0.01)
        drain = phase(n, time.perf_counter() - t0)
        drainer.stop(drain_seconds=0)
        if refresher:
            refresher.stop()
            refresher.refresher.refresh_all()  # every remaining mark
            refresher.refresher.close()
        caught_up = time.perf_counter() - t0
        written = sum(written_box)
        peek_s = ack_s = 0.0
        write_s = sum(write_times)
        first_batch = [readings[i] for i in range(min(sink_batch, n))]
        last_batch = [readings[i] for i in range(max(0, n - sink_batch), n)]

        checks = [
            Check("buffer empty", buffer.pending() == 0, f"{buffer.pending()} readings pending"),
            Check("nothing dropped", buffer.counter("dropped") == 0,
                  f"buffer dropped {buffer.counter('dropped')} readings"),
            Check("sink count", written == n, f"sink reported {written:,} new rows"),
            *check_load(url, n, rollups),
            *check_replay(url, sink, [first_batch, last_batch], n, rollups),
        ]
        ms = sorted(t * 1000 for t in write_times)
        return GatewayRun(
            label=label, refresh_rollups=rollups, append=append, drain=drain,
            end_to_end=drain if concurrent else phase(n, append.seconds + drain.seconds),
            batches=len(write_times),
            rollups_caught_up_s=caught_up,
            peek_s=peek_s, write_s=write_s, ack_s=ack_s,
            write_ms_p50=statistics.median(ms), write_ms_p95=ms[int(0.95 * (len(ms) - 1))],
            write_ms_max=ms[-1], checks=checks,
        )
    finally:
        sink.close()
        buffer.close()


# ---------------------------------------------------------------------------------------------
# report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def render(config: dict[str, Any], env: dict[str, Any], baseline: Phase,
           baseline_checks: list[Check], runs: list[GatewayRun]) -> str:
    n = config["readings"]
    ts = f"TimescaleDB {env['timescaledb']}" if env["timescaledb"] else "no TimescaleDB"
    lines = [
        "",
        f"Lingtan ingest benchmark: {n:,} readings = {config['meters']} meters × "
        f"{len(QUANTITIES)} quantities at 1 s",
        f"PostgreSQL {env['postgresql']} ({ts}), Python {env['python']}, psycopg "
        f"{env['psycopg']} ({env['psycopg_impl']}), SQLite {env['sqlite']}, {env['cpus']} CPUs",
        "",
        f"{'path':<44}{'readings/s':>12}{'seconds':>10}{'× COPY':>9}",
        "-" * 75,
    ]

    def row(name: str, p: Phase) -> str:
        return f"{name:<44}{p.rate:>12,.0f}{p.seconds:>10.2f}{p.rate / baseline.rate:>9.2f}"

    lines.append(row("raw binary COPY, 1 commit (baseline)", baseline))
    for run in runs:
        lines += [
            f"gateway, {run.label}",
            row(f"  buffer append ({config['append_batch']:,}/append)", run.append),
            row(f"  drain (Drainer, batches of {config['sink_batch']:,})", run.drain),
            row("  end-to-end (append + drain)" if "concurrent" not in run.label
                else "  end-to-end (appending while draining)", run.end_to_end),
        ]
        if run.refresh_rollups:
            lines.append(f"  rollups caught up {run.rollups_caught_up_s:.2f} s after the drain began")
    by_rollups = {r.refresh_rollups: r for r in runs if "concurrent" not in r.label}
    if len(by_rollups) == 2:
        extra = by_rollups[True].drain.seconds - by_rollups[False].drain.seconds
        slower = by_rollups[False].drain.rate / by_rollups[True].drain.rate
        lines.append(f"cost of maintaining rollups: +{extra:.2f} s of drain "
                     f"({extra / n * 1e6:.1f} µs/reading), drain {slower:.1f}× slower")
    lines += [
        "",
        f"{'drain breakdown':<24}{'peek s':>9}{'write s':>9}{'ack s':>9}"
        f"{'write ms p50':>14}{'p95':>8}{'max':>8}",
        "-" * 81,
    ]
    for run in runs:
        lines.append(
            f"{'gateway, ' + run.label:<24}{run.peek_s:>9.2f}{run.write_s:>9.2f}{run.ack_s:>9.2f}"
            f"{run.write_ms_p50:>14.1f}{run.write_ms_p95:>8.1f}{run.write_ms_max:>8.1f}"
        )
    lines += [
        "",
        f"targets: ≥ {TARGET_RATE:,.0f} readings/s and ≥ {TARGET_RATIO} × raw COPY",
        f"{'':<36}{'readings/s':>12}{'':>6}{'× COPY':>9}",
    ]
    for run in runs:
        for name, p in (("drain", run.drain), ("end-to-end", run.end_to_end)):
            ratio = p.rate / baseline.rate
            lines.append(
                f"{'gateway, ' + run.label + ', ' + name:<36}{p.rate:>12,.0f}"
                f" {verdict(p.rate >= TARGET_RATE)}{ratio:>9.2f} {verdict(ratio >= TARGET_RATIO)}"
            )
    lines += ["", "correctness"]
    groups = [("raw COPY", baseline_checks)] + [(f"gateway, {r.label}", r.checks) for r in runs]
    for name, checks in groups:
        for c in checks:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {name:<22} {c.name:<28} {c.detail}")
    return "\n".join(lines)


def result_json(config: dict[str, Any], env: dict[str, Any], baseline: Phase,
                baseline_checks: list[Check], runs: list[GatewayRun], ok: bool) -> dict[str, Any]:
    def ratios(run: GatewayRun) -> dict[str, float]:
        return {"drain": run.drain.rate / baseline.rate,
                "end_to_end": run.end_to_end.rate / baseline.rate}

    by_rollups = {r.refresh_rollups: r for r in runs if "concurrent" not in r.label}
    return {
        "benchmark": "ingest",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config,
        "environment": env,
        "baseline": {"raw_copy": asdict(baseline), "checks": [asdict(c) for c in baseline_checks]},
        "gateway": {
            ("rollups_on" if r.refresh_rollups else "rollups_off"): {
                **asdict(r), "ratio_to_copy": ratios(r),
                "targets": {
                    f"{kind}_{what}": (getattr(r, kind).rate >= TARGET_RATE if what == "rate"
                                       else ratios(r)[kind] >= TARGET_RATIO)
                    for kind in ("drain", "end_to_end") for what in ("rate", "ratio")
                },
            }
            for r in runs
        },
        "rollup_cost_s": (
            on.drain.seconds - off.drain.seconds
            if (on := by_rollups.get(True)) and (off := by_rollups.get(False)) else None
        ),
        "targets": {"readings_per_s": TARGET_RATE, "ratio_to_copy": TARGET_RATIO},
        "correct": ok,
    }


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n")[0])
    p.add_argument("--readings", type=int, default=1_000_000, help="readings to load (N)")
    p.add_argument("--meters", type=int, default=200, help="meters (M), each reporting "
                   f"{len(QUANTITIES)} quantities per second")
    p.add_argument("--database-url",
                   default=os.environ.get("LINGTAN_BENCH_DATABASE_URL", DEFAULT_URL),
                   help="server to create the scratch database on "
                        "(default: $LINGTAN_BENCH_DATABASE_URL or %(default)s)")
    p.add_argument("--append-batch", type=int, default=1000,
                   help="readings per DiskBuffer.append, as a collector would hand over")
    p.add_argument("--sink-batch", type=int, default=SinkConfig.model_fields["batch"].default,
                   help="readings per peek, as Gateway._sink_loop (default: the config default)")
    p.add_argument("--buffer-dir", type=Path, default=None,
                   help="where the SQLite buffer lives (default: the system temp folder); "
                        "put it on the disk a gateway would use")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    for name in ("readings", "meters", "append_batch", "sink_batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM would end the process without unwinding; turn it into an exception so the
    # scratch database is still dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    progress = Progress()
    n = args.readings
    config = {"readings": n, "meters": args.meters, "quantities": list(QUANTITIES),
              "append_batch": args.append_batch, "sink_batch": args.sink_batch,
              "seed": args.seed, "server": _redact(args.database_url)}

    progress(f"generating {n:,} readings for {args.meters} meters × {len(QUANTITIES)} quantities")
    readings = generate(n, args.meters, args.seed)
    config["time_span"] = [readings[0].time.isoformat(), readings[-1].time.isoformat()]
    # A running gateway never holds a million readings; keeping them out of the cyclic
    # collector's sight stops them slowing every measured phase with full collections.
    gc.collect()
    gc.freeze()

    with scratch_database(args.database_url, progress) as url, \
            tempfile.TemporaryDirectory(prefix="lingtan-bench-", dir=args.buffer_dir) as tmp:
        env = environment(url)

        reset(url)
        progress("baseline: raw binary COPY into readings")
        baseline = raw_copy(url, readings, progress)
        progress(f"baseline: {baseline.rate:,.0f} readings/s")
        replay_sink = PostgresSink(url, refresh_rollups=False)
        try:
            baseline_checks = check_load(url, n, rollups=False) + check_replay(
                url, replay_sink, [readings[: args.sink_batch], readings[-args.sink_batch :]], n,
                rollups=False)
        finally:
            replay_sink.close()

        runs: list[GatewayRun] = []
        for rollups, concurrent in ((False, False), (True, False), (True, True)):
            reset(url)
            progress(f"gateway path, rollups {'on' if rollups else 'off'}"
                     f"{', concurrent append and drain' if concurrent else ''}")
            run = gateway_path(url, readings, rollups=rollups, append_batch=args.append_batch,
                               sink_batch=args.sink_batch, buffer_dir=Path(tmp), progress=progress,
                               concurrent=concurrent)
            progress(f"  {run.label}: append {run.append.rate:,.0f}/s, drain {run.drain.rate:,.0f}/s,"
                     f" end-to-end {run.end_to_end.rate:,.0f}/s")
            runs.append(run)

    ok = all(c.ok for c in baseline_checks) and all(c.ok for r in runs for c in r.checks)
    print(render(config, env, baseline, baseline_checks, runs))
    return finish(args.output, result_json(config, env, baseline, baseline_checks, runs, ok), ok)


if __name__ == "__main__":
    sys.exit(main())
