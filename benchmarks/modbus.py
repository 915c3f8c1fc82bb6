"""Modbus polling: the gateway's collector against a bare pymodbus loop, 200 meters at 1 s.

Run:  .venv/bin/python -m benchmarks.modbus [--devices 200] [--registers 20] [--poll 1.0] [--seconds 30]

A separate process (``benchmarks.modbus_sim``) serves the meters from several Modbus TCP
servers on 127.0.0.1, ``--per-server`` unit ids each, like RS-485 lines behind TCP gateways;
each meter holds ``registers / 2`` float32 points. The same meters are then polled twice,
one after the other, each for a warm-up plus ``--seconds`` measured:

1. baseline: one bare ``AsyncModbusTcpClient`` per server, every poll slot reading each unit's
   registers with one ``read_holding_registers`` in turn and unpacking the floats — the
   least a Python client on pymodbus can do for the same schedule;
2. the gateway's Modbus collector exactly as ``Gateway`` runs it — ``group_by_bus`` (with a
   health registry, which every poll reports to) and one ``run_bus`` task per bus — its
   readings emitted into a counter. Validation, the disk buffer and the sink are left out:
   they run behind ``Gateway.emit`` and the ingest benchmark measures them.

For both it reports polls completed against the schedule, register-read requests and readings
per second, the per-bus cycle time (first request to last reply of one pass over a bus's
devices), request latency, per-device poll-interval jitter and client CPU, with the ratio
gateway / baseline. Figures are printed and written to ``benchmarks/results/modbus.json``.
The exit status is non-zero only when a correctness check fails (a failed poll, a starved
device, a value that does not decode to what the server holds, requests the server did not
see): a missed target is a result, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import platform
import statistics
import struct
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil
import pymodbus
import yaml
from pymodbus.client import AsyncModbusTcpClient

from benchmarks.modbus_sim import HOST, QUANTITIES, SimMeter, SimServers, point_value, yaml_points
from benchmarks.report import Check, Progress, add_layout_args, finish
from gateway.collectors.modbus import group_by_bus, run_bus
from gateway.config import Device, parse_config
from gateway.health import HealthRegistry
from lingtan.kernel.reading import Reading

RESULTS = Path(__file__).resolve().parent / "results" / "modbus.json"

# The targets: keep up with 200 devices at 1 s, and a p99 bus cycle "well under" the
# poll period — read here as at most half of it, leaving room for a slow or dead meter.
TARGET_POLLS = 0.99  # of the polls the schedule asks for
TARGET_CYCLE = 0.5  # of the poll period, p99 of per-bus cycle times
# A device with fewer than this share of the median device's polls has been starved.
STARVED_BELOW = 0.5


@dataclass
class Poll:
    start: float  # monotonic
    end: float
    readings: int
    requests: int


@dataclass
class Recording:
    """What one client did: every completed poll per device, failures, the last values seen."""

    polls: dict[str, list[Poll]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_s: float = 0.0  # process CPU over the whole phase (client side only)
    wall_s: float = 0.0
    server_requests: int = 0  # what the simulator received during the phase
    sim_cpu_s: float = 0.0  # the simulator process's CPU over the phase: is it the bottleneck?
    # Stalls that are not the client's own work show in the tail figures; these name them.
    gc_pauses: list[tuple[int, float]] = field(default_factory=list)  # (generation, seconds)
    steal_s: float = 0.0  # CPU time the hypervisor gave to others, whole machine


@dataclass
class Figures:
    polls: int
    expected: int
    requests_per_poll: float
    requests_per_s: float
    readings_per_s: float
    cycle_ms_p50: float
    cycle_ms_p99: float
    cycle_ms_max: float
    cycles: int
    latency_ms_p50: float
    latency_ms_p99: float
    jitter_ms_p50: float
    jitter_ms_p99: float
    jitter_ms_max: float
    cpu_percent: float  # of one core, over the whole phase
    cpu_ms_per_poll: float
    sim_cpu_percent: float
    gc_full_collections: int
    gc_pause_ms_max: float
    steal_percent: float  # of the machine's CPU time over the phase
    polls_per_device_min: int
    polls_per_device_max: int

    @property
    def completed(self) -> float:
        return self.polls / max(self.expected, 1)


# ---------------------------------------------------------------------------------------------
# the two clients


class TimingHealth(HealthRegistry):
    """The gateway's own health registry (every poll pays for it, as in a running gateway) that
    also keeps each poll's start and end; ``latency_s`` is measured by ``_poll_once`` from
    just before the first request to just after the last reply."""

    def __init__(self, devices: list[Device], recording: Recording) -> None:
        super().__init__([d.id for d in devices])
        self.recording = recording
        self.requests = {d.id: 0 for d in devices}  # filled in once the planner has run

    def poll_ok(self, device_id: str, latency_s: float, n_readings: int) -> None:
        super().poll_ok(device_id, latency_s, n_readings)
        now = time.monotonic()
        self.recording.polls[device_id].append(
            Poll(now - latency_s, now, n_readings, self.requests[device_id]))

    def poll_failed(self, device_id: str, error: str) -> None:
        super().poll_failed(device_id, error)
        self.recording.failures[device_id] += 1


def gateway_devices(meters: list[SimMeter], ports: list[int], points: int, poll: float) -> list[Device]:
    """The meters as a gateway YAML config would list them, loaded through ``parse_config``."""
    config = {
        "gateway": {"id": "bench-gw", "site": "bench-site"},
        "devices": [
            {"id": m.id, "protocol": "modbus-tcp", "host": HOST, "port": ports[m.server],
             "unit": m.unit, "poll": poll, "points": yaml_points(points)}
            for m in meters
        ],
    }
    return parse_config(yaml.safe_dump(config, sort_keys=False), "benchmark config").devices


def first_slot(after: float, poll: float) -> float:
    """The first multiple of ``poll`` (monotonic) after ``after``: the collector keeps its
    devices' phase on those multiples, and the baseline uses the same grid."""
    return math.ceil(after / poll) * poll


async def run_gateway(devices: list[Device], poll: float, warmup: float, seconds: float,
                      recording: Recording) -> tuple[float, list[list[str]]]:
    """The collector layer as ``Gateway._collect`` runs it; returns the window start and buses."""
    health = TimingHealth(devices, recording)
    buses = group_by_bus(devices, health)
    last = recording.last

    def emit(readings: list[Reading]) -> None:
        # As cheap as possible so the figures are the collector's: keep the newest poll's values.
        last[readings[0].meter_id] = {r.quantity: r.value for r in readings}

    stop = asyncio.Event()
    launched = time.monotonic()
    tasks = [asyncio.create_task(run_bus(bus, emit, stop)) for bus in buses]
    # The planner runs on each device's first poll; its block count is what every later poll
    # sends, so fill it in as soon as it is known.
    while any(s.blocks is None for b in buses for s in b.devices):
        if time.monotonic() - launched > warmup + 10 * poll:
            break  # a device that never answers: the correctness checks will name it
        await asyncio.sleep(0.01)
    for bus in buses:
        for state in bus.devices:
            health.requests[state.device.id] = len(state.blocks or [])
    for device_id, polls in recording.polls.items():  # polls finished before the line above
        for p in polls:
            p.requests = health.requests[device_id]
    t0 = first_slot(launched + warmup, poll)
    # One more period after the window, so the polls that start in it can finish.
    await asyncio.sleep(t0 + seconds + poll - time.monotonic())
    stop.set()
    await asyncio.gather(*tasks)
    return t0, [[s.device.id for s in bus.devices] for bus in buses]


async def bare_bus(port: int, meters: list[SimMeter], points: int, poll: float, start: float,
                   end: float, recording: Recording) -> None:
    """The baseline for one server: in every slot, each unit read once in turn."""
    client = AsyncModbusTcpClient(HOST, port=port)
    if not await client.connect():
        for m in meters:
            recording.failures[m.id] += 1
        return
    fmt_words, fmt_floats = f">{2 * points}H", f">{points}f"
    try:
        slot = start
        while slot < end:
            wait = slot - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            for m in meters:
                a = time.monotonic()
                try:
                    reply = await client.read_holding_registers(0, count=2 * points, device_id=m.unit)
                except Exception:  # any failure is counted, and fails the checks
                    recording.failures[m.id] += 1
                    continue
                if reply.isError():
                    recording.failures[m.id] += 1
                    continue
                values = struct.unpack(fmt_floats, struct.pack(fmt_words, *reply.registers))
                b = time.monotonic()
                recording.polls[m.id].append(Poll(a, b, points, 1))
                recording.last[m.id] = dict(zip(QUANTITIES, values, strict=False))
            # The next multiple of the period, as the collector's schedule (the first pass ran at
            # once, like its first poll); the epsilon keeps float rounding on the current slot.
            slot = (math.floor(slot / poll + 1e-9) + 1) * poll
            # Late (a pass longer than the period): skip the missed slots, as the collector does.
            now = time.monotonic()
            if slot <= now:
                slot += poll * (int((now - slot) / poll) + 1)
    finally:
        client.close()


async def run_baseline(sim: SimServers, poll: float, warmup: float, seconds: float,
                       recording: Recording) -> tuple[float, list[list[str]]]:
    by_server: dict[int, list[SimMeter]] = defaultdict(list)
    for m in sim.meters:
        by_server[m.server].append(m)
    # The slots start at once (the warm-up connects and touches every unit, like the
    # collector's first pass) and run until the window plus one period is over.
    start = time.monotonic()
    t0 = first_slot(start + warmup, poll)
    await asyncio.gather(*(bare_bus(sim.ports[s], ms, sim.points, poll, start, t0 + seconds + poll,
                                    recording) for s, ms in by_server.items()))
    return t0, [[m.id for m in ms] for ms in by_server.values()]


def measure(label: str, sim: SimServers, run: Any, progress: Progress) -> tuple[Recording, float,
                                                                                 list[list[str]]]:
    """Run one client phase, with its CPU time and what the simulator saw meanwhile."""
    recording = Recording()
    before = sum(sim.requests())
    sim_cpu = psutil.Process(sim.proc.pid).cpu_times()
    gc_started: list[float] = []

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        # A collection stops the event loop, and every bus's current request waits it out, so
        # one pause lengthens a whole round of cycles at once. Timing it costs nothing between
        # collections (a sleeping probe task would: ~2 % of a core here, more than the baseline).
        if phase == "start":
            gc_started[:] = [time.perf_counter()]
        elif gc_started:
            recording.gc_pauses.append((info["generation"], time.perf_counter() - gc_started[0]))

    gc.callbacks.append(gc_timer)
    steal = getattr(psutil.cpu_times(), "steal", 0.0)  # Linux only; 0 elsewhere
    cpu, wall = time.process_time(), time.monotonic()
    try:
        t0, buses = asyncio.run(run(recording))
    finally:
        gc.callbacks.remove(gc_timer)
    recording.cpu_s = time.process_time() - cpu
    recording.wall_s = time.monotonic() - wall
    recording.steal_s = getattr(psutil.cpu_times(), "steal", 0.0) - steal
    recording.server_requests = sum(sim.requests()) - before
    after = psutil.Process(sim.proc.pid).cpu_times()
    recording.sim_cpu_s = after.user + after.system - sim_cpu.user - sim_cpu.system
    progress(f"  {label}: {sum(len(p) for p in recording.polls.values()):,} polls in "
             f"{recording.wall_s:.1f} s, client CPU {100 * recording.cpu_s / recording.wall_s:.0f} %, "
             f"simulator CPU {100 * recording.sim_cpu_s / recording.wall_s:.0f} %")
    return recording, t0, buses


# ---------------------------------------------------------------------------------------------
# figures


def pct(samples: Iterable[float], q: float) -> float:
    """Nearest-rank percentile, as the gateway's health registry computes them."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


def figures(rec: Recording, buses: list[list[str]], t0: float, seconds: float, poll: float,
            devices: int) -> Figures:
    t1 = t0 + seconds
    window = {d: [p for p in ps if t0 <= p.start < t1] for d, ps in rec.polls.items()}
    all_polls = [p for ps in window.values() for p in ps]
    # A bus's cycle: the r-th poll of each of its devices in the window, from the first
    # request to the last reply. A device that missed a slot shifts its later rounds, which
    # lengthens the cycles: a miss shows up here too rather than being averaged away.
    cycles = []
    for ids in buses:
        per = [window.get(d, []) for d in ids]
        for r in range(min((len(ps) for ps in per), default=0)):
            cycles.append(max(ps[r].end for ps in per) - min(ps[r].start for ps in per))
    jitter = [abs(b.start - a.start - poll) for ps in window.values() for a, b in pairwise(ps)]
    counts = [len(window.get(d, [])) for ids in buses for d in ids]
    requests = sum(p.requests for p in all_polls)
    n = len(all_polls)
    total_polls = sum(len(ps) for ps in rec.polls.values())
    return Figures(
        polls=n, expected=round(devices * seconds / poll),
        requests_per_poll=requests / max(n, 1),
        requests_per_s=requests / seconds,
        readings_per_s=sum(p.readings for p in all_polls) / seconds,
        cycle_ms_p50=1000 * pct(cycles, 0.5), cycle_ms_p99=1000 * pct(cycles, 0.99),
        cycle_ms_max=1000 * max(cycles, default=math.nan), cycles=len(cycles),
        # per poll; with one request per poll it is the request's round trip
        latency_ms_p50=1000 * pct((p.end - p.start for p in all_polls), 0.5),
        latency_ms_p99=1000 * pct((p.end - p.start for p in all_polls), 0.99),
        jitter_ms_p50=1000 * pct(jitter, 0.5), jitter_ms_p99=1000 * pct(jitter, 0.99),
        jitter_ms_max=1000 * max(jitter, default=math.nan),
        cpu_percent=100 * rec.cpu_s / max(rec.wall_s, 1e-9),
        cpu_ms_per_poll=1000 * rec.cpu_s / max(total_polls, 1),
        sim_cpu_percent=100 * rec.sim_cpu_s / max(rec.wall_s, 1e-9),
        gc_full_collections=sum(1 for g, _ in rec.gc_pauses if g == 2),
        gc_pause_ms_max=1000 * max((d for _, d in rec.gc_pauses), default=0.0),
        steal_percent=100 * rec.steal_s / max(rec.wall_s * (os.cpu_count() or 1), 1e-9),
        polls_per_device_min=min(counts, default=0), polls_per_device_max=max(counts, default=0),
    )


def checks_for(label: str, rec: Recording, fig: Figures, meters: list[SimMeter], points: int,
               seconds: float, poll: float) -> list[Check]:
    failed = {d: n for d, n in rec.failures.items() if n}
    checks = [Check("no failed polls", not failed,
                    "every poll answered" if not failed else f"{sum(failed.values())} failed polls on "
                    f"{len(failed)} devices, e.g. {sorted(failed)[:3]}")]
    median = statistics.median(len(rec.polls.get(m.id, [])) for m in meters)
    silent = [m.id for m in meters if not rec.polls.get(m.id)]
    starved = [m.id for m in meters if len(rec.polls.get(m.id, [])) < STARVED_BELOW * median]
    checks.append(Check("every device polled", not silent,
                        f"all {len(meters)} devices" if not silent else f"never polled: {silent[:5]}"))
    checks.append(Check("no device starved", not starved,
                        f"polls per device in the window {fig.polls_per_device_min}…"
                        f"{fig.polls_per_device_max} of {seconds / poll:g} slots" if not starved
                        else f"under {STARVED_BELOW:.0%} of the median's polls: {starved[:5]}"))
    short = sum(1 for ps in rec.polls.values() for p in ps if p.readings != points)
    checks.append(Check("readings per poll", short == 0,
                        f"every poll gave {points} readings" if not short
                        else f"{short} polls gave fewer than {points} readings"))
    # Every point of every device: the newest value seen must be exactly what the server holds
    # (float32 values chosen exactly representable and unique per meter and point).
    wrong = []
    for m in meters:
        got = rec.last.get(m.id, {})
        for j in range(points):
            want = point_value(m.index, j)
            if got.get(QUANTITIES[j]) != want:
                wrong.append(f"{m.id}/{QUANTITIES[j]}: {got.get(QUANTITIES[j])} ≠ {want}")
    checks.append(Check("values decode to the server's", not wrong,
                        f"{len(meters) * points:,} points, e.g. {meters[-1].id}/{QUANTITIES[points - 1]}"
                        f" = {point_value(meters[-1].index, points - 1)}" if not wrong
                        else f"{len(wrong)} wrong, e.g. {wrong[:3]}"))
    sent = sum(p.requests for ps in rec.polls.values() for p in ps)
    checks.append(Check("server saw the requests", sent == rec.server_requests,
                        f"client counted {sent:,} requests, the simulator received "
                        f"{rec.server_requests:,}"))
    return checks


# ---------------------------------------------------------------------------------------------
# report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def render(config: dict[str, Any], env: dict[str, Any], base: Figures, gw: Figures,
           checks: dict[str, list[Check]]) -> str:
    poll = config["poll"]
    lines = [
        "",
        f"Lingtan Modbus polling benchmark: {config['devices']} devices × {config['registers']} holding "
        f"registers ({config['registers'] // 2} float32 points), poll {poll:g} s, "
        f"{config['seconds']:g} s measured",
        f"{config['servers']} Modbus TCP servers × {config['per_server']} unit ids on {HOST} "
        f"(pymodbus {env['pymodbus']} simulator in its own process), Python {env['python']}, "
        f"{env['cpus']} CPUs",
        "",
        f"{'':<34}{'baseline':>14}{'gateway':>14}{'gw / base':>11}",
        f"{'':<34}{'bare pymodbus':>14}{'collector':>14}",
        "-" * 73,
    ]

    def row(name: str, b: float, g: float, fmt: str, ratio: bool = True) -> None:
        r = f"{g / b:>11.2f}" if ratio and b else ""
        lines.append(f"{name:<34}{b:>14{fmt}}{g:>14{fmt}}{r}")

    lines.append(f"{'polls completed / expected':<34}{f'{base.polls:,}/{base.expected:,}':>14}"
                 f"{f'{gw.polls:,}/{gw.expected:,}':>14}")
    row("  share of expected (%)", 100 * base.completed, 100 * gw.completed, ".1f")
    row("requests per poll", base.requests_per_poll, gw.requests_per_poll, ".2f")
    row("register reads/s (requests)", base.requests_per_s, gw.requests_per_s, ",.1f")
    row("readings/s", base.readings_per_s, gw.readings_per_s, ",.0f")
    row("bus cycle p50 (ms)", base.cycle_ms_p50, gw.cycle_ms_p50, ".1f")
    row("bus cycle p99 (ms)", base.cycle_ms_p99, gw.cycle_ms_p99, ".1f")
    row("bus cycle max (ms)", base.cycle_ms_max, gw.cycle_ms_max, ".1f")
    row("poll latency p50 (ms)", base.latency_ms_p50, gw.latency_ms_p50, ".2f")
    row("poll latency p99 (ms)", base.latency_ms_p99, gw.latency_ms_p99, ".2f")
    row("poll-interval jitter p50 (ms)", base.jitter_ms_p50, gw.jitter_ms_p50, ".1f")
    row("poll-interval jitter p99 (ms)", base.jitter_ms_p99, gw.jitter_ms_p99, ".1f")
    row("poll-interval jitter max (ms)", base.jitter_ms_max, gw.jitter_ms_max, ".1f")
    row("client CPU (% of one core)", base.cpu_percent, gw.cpu_percent, ".1f")
    row("client CPU per poll (ms)", base.cpu_ms_per_poll, gw.cpu_ms_per_poll, ".2f")
    row("simulator CPU (% of one core)", base.sim_cpu_percent, gw.sim_cpu_percent, ".1f", ratio=False)
    row("full GC collections (gen 2)", base.gc_full_collections, gw.gc_full_collections, "d", ratio=False)
    row("longest GC pause (ms)", base.gc_pause_ms_max, gw.gc_pause_ms_max, ".1f", ratio=False)
    row("CPU steal, whole VM (%)", base.steal_percent, gw.steal_percent, ".1f", ratio=False)
    lines.append(f"{'polls per device (min…max)':<34}"
                 f"{f'{base.polls_per_device_min}…{base.polls_per_device_max}':>14}"
                 f"{f'{gw.polls_per_device_min}…{gw.polls_per_device_max}':>14}")
    lines += [
        "",
        f"gateway / baseline: reads/s {gw.requests_per_s / base.requests_per_s:.2f} ×, "
        f"p99 bus cycle {gw.cycle_ms_p99 / base.cycle_ms_p99:.2f} ×",
        "",
        f"targets: ≥ {TARGET_POLLS:.0%} of expected polls, p99 bus cycle ≤ {TARGET_CYCLE:.0%} of the "
        f"{poll:g} s poll, one request per device poll",
    ]
    cycle_share = gw.cycle_ms_p99 / (1000 * poll)
    lines += [
        f"  {'gateway polls completed':<30}{100 * gw.completed:>9.1f} % of expected"
        f"{'':<9}{verdict(gw.completed >= TARGET_POLLS)}",
        f"  {'gateway p99 bus cycle':<30}{gw.cycle_ms_p99:>9.1f} ms = {100 * cycle_share:.1f} % of the poll"
        f"{'':<2}{verdict(cycle_share <= TARGET_CYCLE)}",
        f"  {'gateway requests per poll':<30}{gw.requests_per_poll:>9.2f} for {config['registers']} registers"
        f"{'':<6}{verdict(gw.requests_per_poll <= 1.0)}",
        "",
        "correctness",
    ]
    for name, group in checks.items():
        for c in group:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {name:<10} {c.name:<32} {c.detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.modbus", description=__doc__.split("\n")[0])
    add_layout_args(p)
    p.add_argument("--seconds", type=float, default=30.0, help="measured window per client (s)")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="before the window: connects and each device's first (planning) poll")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    args = p.parse_args(argv)
    if args.devices < 1 or args.per_server < 1 or args.poll <= 0 or args.seconds <= 0:
        p.error("--devices, --per-server, --poll and --seconds must be positive")
    if args.seconds < 2 * args.poll:
        p.error("--seconds must cover at least two poll periods")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress()
    env = {"python": platform.python_version(), "pymodbus": pymodbus.__version__,
           "cpus": os.cpu_count(), "machine": platform.platform()}
    progress(f"starting the simulator: {args.devices} meters, {args.per_server} per server")
    with SimServers(args.devices, args.per_server, args.registers) as sim:
        config = {"devices": args.devices, "registers": args.registers, "per_server": args.per_server,
                  "servers": len(sim.ports), "poll": args.poll, "seconds": args.seconds,
                  "warmup": args.warmup, "points": sim.points}

        progress(f"baseline: bare AsyncModbusTcpClient per server, {args.seconds:g} s measured")
        base_rec, base_t0, base_buses = measure(
            "baseline", sim,
            lambda rec: run_baseline(sim, args.poll, args.warmup, args.seconds, rec), progress)

        devices = gateway_devices(sim.meters, sim.ports, sim.points, args.poll)
        progress(f"gateway: group_by_bus + run_bus, {args.seconds:g} s measured")
        gw_rec, gw_t0, gw_buses = measure(
            "gateway", sim,
            lambda rec: run_gateway(devices, args.poll, args.warmup, args.seconds, rec), progress)

    base = figures(base_rec, base_buses, base_t0, args.seconds, args.poll, args.devices)
    gw = figures(gw_rec, gw_buses, gw_t0, args.seconds, args.poll, args.devices)
    checks = {
        "baseline": checks_for("baseline", base_rec, base, sim.meters, sim.points, args.seconds, args.poll),
        "gateway": checks_for("gateway", gw_rec, gw, sim.meters, sim.points, args.seconds, args.poll),
    }
    ok = all(c.ok for group in checks.values() for c in group)
    print(render(config, env, base, gw, checks))
    result = {
        "benchmark": "modbus",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config,
        "environment": env,
        "baseline": {**asdict(base), "completed": base.completed},
        "gateway": {**asdict(gw), "completed": gw.completed},
        "ratio": {"requests_per_s": gw.requests_per_s / base.requests_per_s,
                  "readings_per_s": gw.readings_per_s / base.readings_per_s,
                  "cycle_ms_p99": gw.cycle_ms_p99 / base.cycle_ms_p99},
        "targets": {
            "polls_completed": {"target": TARGET_POLLS, "met": gw.completed >= TARGET_POLLS},
            "cycle_p99_share_of_poll": {"target": TARGET_CYCLE,
                                        "met": gw.cycle_ms_p99 / (1000 * args.poll) <= TARGET_CYCLE},
            "requests_per_poll": {"target": 1.0, "met": gw.requests_per_poll <= 1.0},
        },
        "checks": {k: [asdict(c) for c in v] for k, v in checks.items()},
        "correct": ok,
    }
    return finish(args.output, result, ok)


if __name__ == "__main__":
    sys.exit(main())
