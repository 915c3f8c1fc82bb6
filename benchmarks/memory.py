"""Gateway memory: resident set size of a real gateway process polling 200 Modbus meters at 1 s.

Run:  .venv/bin/python -m benchmarks.memory [--devices 200] [--seconds 60] [--database-url URL]

The meters are served by the Modbus benchmark's simulator (``benchmarks.modbus_sim``, its own
process: several Modbus TCP servers, ``--per-server`` unit ids each, float32 points). On the
given PostgreSQL server a scratch database is created, migrated and dropped again. The gateway
runs as it would in the field — ``python -m lingtan.cli gateway run --config <yaml>`` with
``LINGTAN_DATABASE_URL`` set, its disk buffer in a temporary folder and no /metrics listener —
and its RSS (psutil) is sampled every second for ``--seconds`` once its first readings are
stored: start, steady-state median and max, and growth per minute over the second half (a leak
shows as steady growth).

Baseline, sampled at the same moments: the same interpreter with the CLI and the gateway
package imported, idling (``python -c "import lingtan.cli, gateway.runtime; …sleep"``), so
"gateway − baseline" is what the devices, the threads, the buffer and the connections cost.

As a sanity check that the gateway really worked, the readings it stored during the sampled
window are counted per second, every device must have stored readings, and the newest value
of every point must be what the simulator holds. Figures are printed and written to
``benchmarks/results/memory.json``. The exit status is non-zero only when such a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import yaml

from benchmarks.ingest import DEFAULT_URL, Progress, _redact, scratch_database
from benchmarks.modbus_sim import HOST, QUANTITIES, SimServers, point_value, yaml_points
from benchmarks.report import Check, add_layout_args, finish

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
# The gateway gets this long to store its first readings before the run is called failed.
STARTUP_TIMEOUT_S = 60.0
# After SIGTERM the gateway drains for up to 5 s (Gateway.stop); allow for that and shutdown.
STOP_TIMEOUT_S = 30.0


@dataclass
class Series:
    """RSS samples of one process, MiB, at the shared sampling instants."""

    label: str
    samples: list[float]

    @property
    def second_half(self) -> list[float]:
        return self.samples[len(self.samples) // 2 :]

    @property
    def start(self) -> float:
        return self.samples[0]

    @property
    def median(self) -> float:
        return statistics.median(self.second_half)

    @property
    def max(self) -> float:
        return max(self.samples)

    def growth_per_min(self, interval: float) -> float:
        """Least-squares slope over the second half, MiB per minute: one-off allocations early
        in the run (pools, caches, the buffer's first pages) are over by then; a leak is not."""
        ys = self.second_half
        if len(ys) < 3:
            return math.nan
        xs = [i * interval for i in range(len(ys))]
        return statistics.linear_regression(xs, ys).slope * 60.0

    def summary(self, interval: float) -> dict[str, float]:
        return {"start_mib": self.start, "median_mib": self.median, "max_mib": self.max,
                "growth_mib_per_min": self.growth_per_min(interval)}


def gateway_yaml(sim: SimServers, poll: float, buffer_dir: Path) -> str:
    config = {
        "gateway": {"id": "bench-gw", "site": "bench-site", "site_name": "Benchmark site"},
        # No /metrics listener: nothing scrapes it here, and a fixed port could clash.
        "health": {"listen": None},
        "buffer": {"path": str(buffer_dir / "buffer.db")},
        "sinks": [{"type": "postgres"}],
        "devices": [
            {"id": m.id, "protocol": "modbus-tcp", "host": HOST, "port": sim.port_of(m), "unit": m.unit,
             "poll": poll, "points": yaml_points(sim.points)}
            for m in sim.meters
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped with SIGTERM (then SIGKILL) on the way out whatever happened."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def rss_mib(proc: psutil.Process) -> float:
    return proc.memory_info().rss / MIB


def first_readings(url: str, gateway: subprocess.Popen[bytes], progress: Progress) -> float:
    """Seconds until the gateway has stored its first readings."""
    t0 = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            if gateway.poll() is not None:
                raise RuntimeError(f"the gateway exited with {gateway.returncode} before storing anything")
            if conn.execute("SELECT EXISTS (SELECT 1 FROM readings)").fetchone()[0]:
                took = time.monotonic() - t0
                progress(f"  first readings stored {took:.1f} s after launch")
                return took
            if time.monotonic() - t0 > STARTUP_TIMEOUT_S:
                raise RuntimeError(f"no readings stored within {STARTUP_TIMEOUT_S:g} s")
            time.sleep(0.25)


def wait_ready(log: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while b"ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the baseline interpreter did not start: {log.read_text(errors='replace')}")
        time.sleep(0.05)


def log_summary(log: Path) -> tuple[dict[str, int], list[str]]:
    """Log lines per level and the first few warnings or errors (JSON lines; others verbatim)."""
    levels: dict[str, int] = {}
    notable: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            level = str(json.loads(line).get("level", "?"))
        except (json.JSONDecodeError, AttributeError):
            level = "other"
        levels[level] = levels.get(level, 0) + 1
        if level not in ("info", "debug") and len(notable) < 3:
            notable.append(line[:300])
    return levels, notable


def stored(url: str, sim: SimServers, w0: datetime, w1: datetime) -> dict[str, Any]:
    """What the gateway wrote: readings in the sampled window, per device, newest values."""
    with psycopg.connect(url) as conn:
        in_window = conn.execute("SELECT count(*) FROM readings WHERE time >= %s AND time < %s",
                                 (w0, w1)).fetchone()[0]
        total = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        per_device = dict(conn.execute("SELECT meter_id, count(*) FROM readings GROUP BY meter_id")
                          .fetchall())
        newest = conn.execute(
            "SELECT DISTINCT ON (meter_id, quantity) meter_id, quantity, value FROM readings"
            " ORDER BY meter_id, quantity, time DESC").fetchall()
    return {"in_window": in_window, "total": total, "per_device": per_device,
            "newest": {(m, q): v for m, q, v in newest}}


def checks_for(sim: SimServers, db: dict[str, Any], exit_code: int | None, levels: dict[str, int],
               notable: list[str]) -> list[Check]:
    missing = [m.id for m in sim.meters if not db["per_device"].get(m.id)]
    checks = [Check("every device stored readings", not missing,
                    f"all {len(sim.meters)} devices" if not missing
                    else f"{len(missing)} without readings, e.g. {missing[:3]}")]
    wrong = []
    for m in sim.meters:
        for j in range(sim.points):
            got, want = db["newest"].get((m.id, QUANTITIES[j])), point_value(m.index, j)
            if got != want:
                wrong.append(f"{m.id}/{QUANTITIES[j]}: {got} ≠ {want}")
    checks.append(Check("stored values are the server's", not wrong,
                        f"newest value of all {len(sim.meters) * sim.points:,} points" if not wrong
                        else f"{len(wrong)} differ, e.g. {wrong[:3]}"))
    checks.append(Check("gateway stopped cleanly", exit_code == 0,
                        f"exit status {exit_code} after SIGTERM"))
    bad = sum(n for level, n in levels.items() if level in ("error", "critical"))
    checks.append(Check("no errors logged", bad == 0,
                        f"log lines by level: {levels}" if bad == 0 else f"{bad} errors, e.g. {notable[:1]}"))
    return checks


# ---------------------------------------------------------------------------------------------
# report


def render(config: dict[str, Any], env: dict[str, Any], base: Series, gw: Series,
           figures: dict[str, Any], checks: list[Check]) -> str:
    interval = config["interval"]
    devices = config["devices"]
    lines = [
        "",
        f"Lingtan gateway memory benchmark: {devices} Modbus devices × {config['points']} float32 points "
        f"at {config['poll']:g} s → PostgreSQL {env['postgresql']}, {len(gw.samples)} samples "
        f"every {interval:g} s",
        f"{config['servers']} Modbus TCP servers × {config['per_server']} unit ids (simulator in its own "
        f"process), Python {env['python']}, {env['cpus']} CPUs, {env['machine']}",
        "",
        f"{'RSS (MiB)':<44}{'start':>9}{'median':>9}{'max':>9}{'growth/min':>12}",
        f"{'':<44}{'':>9}{'2nd half':>9}{'':>9}{'2nd half':>12}",
        "-" * 83,
    ]

    def row(name: str, start: float, median: float, top: float, growth: float) -> None:
        lines.append(f"{name:<44}{start:>9.1f}{median:>9.1f}{top:>9.1f}{growth:>+12.2f}")

    row("baseline: interpreter + gateway imported, idle", base.start, base.median, base.max,
        base.growth_per_min(interval))
    row(f"gateway run, {devices} devices", gw.start, gw.median, gw.max, gw.growth_per_min(interval))
    extra = gw.median - base.median
    row("gateway − baseline", gw.start - base.start, extra, gw.max - base.max,
        gw.growth_per_min(interval) - base.growth_per_min(interval))
    lines += [
        f"{'  per device (KiB)':<44}{'':>9}{1024 * extra / devices:>9.1f}",
        f"gateway / baseline (median): {gw.median / base.median:.2f} ×",
        "",
        f"gateway process: {figures['cpu_percent']:.1f} % of one core over the window, "
        f"{figures['threads']} threads; first readings stored {figures['startup_s']:.1f} s after launch",
        f"readings stored in the window: {figures['stored_in_window']:,} = "
        f"{figures['stored_per_s']:,.0f} readings/s (schedule: {figures['expected_per_s']:,.0f}/s, "
        f"{figures['stored_per_s'] / figures['expected_per_s']:.2f} ×); "
        f"{figures['stored_total']:,} in all",
        "",
        "correctness",
    ]
    for c in checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.name:<32} {c.detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n")[0])
    add_layout_args(p)
    p.add_argument("--seconds", type=float, default=60.0,
                   help="sampling time, from the first stored readings (s)")
    p.add_argument("--interval", type=float, default=1.0, help="between RSS samples (s)")
    p.add_argument("--database-url",
                   default=os.environ.get("LINGTAN_BENCH_DATABASE_URL", DEFAULT_URL),
                   help="server to create the scratch database on "
                        "(default: $LINGTAN_BENCH_DATABASE_URL or %(default)s)")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    if args.devices < 1 or args.poll <= 0 or args.interval <= 0:
        p.error("--devices, --poll and --interval must be positive")
    if args.seconds < 6 * args.interval:
        p.error("--seconds must cover at least six samples")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM would end the process without unwinding; turn it into an exception so the
    # children are stopped and the scratch database is still dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    progress = Progress()
    n_samples = int(args.seconds / args.interval)

    progress(f"starting the simulator: {args.devices} meters, {args.per_server} per server")
    with SimServers(args.devices, args.per_server, args.registers) as sim, \
            scratch_database(args.database_url, progress) as url, \
            tempfile.TemporaryDirectory(prefix="lingtan-bench-memory-") as tmp:
        folder = Path(tmp)
        config_path = folder / "gateway.yaml"
        config_path.write_text(gateway_yaml(sim, args.poll, folder))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LINGTAN_DATABASE_URL": url}
        with psycopg.connect(url) as conn:
            pg_version = conn.info.parameter_status("server_version")
        environment = {"postgresql": pg_version, "python": platform.python_version(),
                       "cpus": os.cpu_count(), "machine": platform.platform()}
        config = {"devices": args.devices, "registers": args.registers, "points": sim.points,
                  "per_server": args.per_server, "servers": len(sim.ports), "poll": args.poll,
                  "seconds": args.seconds, "interval": args.interval,
                  "server": _redact(args.database_url)}

        # Long enough to outlive the whole gateway run; it is stopped with the gateway.
        idle = ("import lingtan.cli, gateway.runtime, time; print('ready', flush=True); "
                f"time.sleep({args.seconds + 600:.0f})")
        progress(f"launching the gateway ({args.devices} devices) and the idle baseline interpreter")
        with process([sys.executable, "-c", idle], env, folder / "baseline.log") as baseline_proc, \
                process([sys.executable, "-m", "lingtan.cli", "gateway", "run", "--config",
                         str(config_path)], env, folder / "gateway.log") as gateway_proc:
            try:
                startup = first_readings(url, gateway_proc, progress)
                # The baseline's first sample must come after its imports, like the gateway's.
                wait_ready(folder / "baseline.log", baseline_proc)
            except RuntimeError:
                tail = (folder / "gateway.log").read_text(errors="replace").splitlines()[-20:]
                print("gateway log (last lines):", *tail, sep="\n  ", file=sys.stderr)
                raise
            gw_ps, base_ps = psutil.Process(gateway_proc.pid), psutil.Process(baseline_proc.pid)
            gw_samples: list[float] = []
            base_samples: list[float] = []
            cpu0 = gw_ps.cpu_times()
            w0, m0 = datetime.now(UTC), time.monotonic()
            for i in range(n_samples):
                # A fixed grid, so a slow sample does not stretch the window.
                time.sleep(max(0.0, m0 + i * args.interval - time.monotonic()))
                if gateway_proc.poll() is not None:
                    raise RuntimeError(f"the gateway exited with {gateway_proc.returncode} while sampled")
                gw_samples.append(rss_mib(gw_ps))
                base_samples.append(rss_mib(base_ps))
                if (i + 1) % max(1, n_samples // 6) == 0:
                    progress(f"  {i + 1}/{n_samples} samples: gateway {gw_samples[-1]:.1f} MiB, "
                             f"baseline {base_samples[-1]:.1f} MiB")
            time.sleep(max(0.0, m0 + n_samples * args.interval - time.monotonic()))
            w1, wall = datetime.now(UTC), time.monotonic() - m0
            cpu1 = gw_ps.cpu_times()
            threads = gw_ps.num_threads()
            progress("stopping the gateway (SIGTERM: it drains its buffer for up to 5 s)")
            gateway_proc.terminate()
            try:
                exit_code: int | None = gateway_proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                exit_code = None
        levels, notable = log_summary(folder / "gateway.log")
        db = stored(url, sim, w0, w1)

    base, gw = Series("baseline", base_samples), Series("gateway", gw_samples)
    span = (w1 - w0).total_seconds()
    figures = {
        "startup_s": startup,
        "cpu_percent": 100 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall,
        "threads": threads,
        "stored_in_window": db["in_window"],
        "stored_per_s": db["in_window"] / span,
        "expected_per_s": args.devices * sim.points / args.poll,
        "stored_total": db["total"],
        "log_levels": levels,
    }
    checks = checks_for(sim, db, exit_code, levels, notable)
    ok = all(c.ok for c in checks)
    print(render(config, environment, base, gw, figures, checks))
    result = {
        "benchmark": "memory",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config,
        "environment": environment,
        "baseline": {**base.summary(args.interval), "samples_mib": base.samples},
        "gateway": {**gw.summary(args.interval), "samples_mib": gw.samples},
        "gateway_minus_baseline_mib": gw.median - base.median,
        "per_device_kib": 1024 * (gw.median - base.median) / args.devices,
        "ratio_to_baseline": gw.median / base.median,
        **figures,
        "checks": [asdict(c) for c in checks],
        "correct": ok,
    }
    return finish(args.output, result, ok)


if __name__ == "__main__":
    sys.exit(main())
