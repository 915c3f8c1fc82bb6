"""Per-device and gateway-wide health: what a field engineer needs to see a meter drop out at once.

Collectors report every poll or message through ``poll_ok``/``poll_failed`` (Modbus) and
``message_ok``/``message_bad`` (MQTT); ``snapshot()`` is what /metrics and the heartbeat show.
Gateway-wide figures (buffer, dead letters, sink) are read from their owners on demand, so they
can never drift from the truth. The heartbeat writer upserts the snapshot into PostgreSQL so the
API can tell whether a gateway is alive without reaching into the plant network.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.brokerstats import BrokerHealth

log = logging.getLogger(__name__)

RATE_WINDOW_S = 60
LATENCY_SAMPLES = 128
ERROR_MAX_CHARS = 300  # a device error text is shown in tables and labels, not a log dump


def percentile(samples: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0…1): always one of the samples, never interpolated."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class RateWindow:
    """Events per second over the last ``window`` seconds.

    One-second buckets keep memory bounded at any rate (an MQTT device may send thousands of
    messages a second); the divisor is the window, or the time since ``since`` while younger,
    so a device that just started is not reported at a fraction of its real rate.
    """

    def __init__(self, since: float, window: int = RATE_WINDOW_S) -> None:
        self.since = since
        self.window = window
        self._buckets: deque[list[int]] = deque()

    def add(self, now: float, n: int = 1) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([second, n])
        self._prune(now)

    def rate(self, now: float) -> float:
        self._prune(now)
        span = min(float(self.window), now - self.since)
        if span <= 0:
            return 0.0
        return sum(n for _, n in self._buckets) / span

    def _prune(self, now: float) -> None:
        oldest = int(now) - self.window
        while self._buckets and self._buckets[0][0] <= oldest:
            self._buckets.popleft()


@dataclass
class _Device:
    since: float
    rate: RateWindow
    last_success: float | None = None  # wall clock (epoch seconds)
    last_error: str | None = None
    consecutive_failures: int = 0
    polls: int = 0
    failures: int = 0
    readings: int = 0
    latency_last: float | None = None
    latency_sum: float = 0.0
    latency_count: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))


@dataclass
class DeviceHealth:
    device: str
    up: bool
    state: str  # ok | failing | waiting (nothing heard yet)
    last_success: float | None
    last_error: str | None
    consecutive_failures: int
    polls_total: int
    failures_total: int
    readings_total: int
    reads_per_second: float
    latency_last_s: float | None
    latency_p50_s: float | None
    latency_p99_s: float | None
    latency_sum_s: float
    latency_count: int


@dataclass
class GatewayHealth:
    gateway_id: str
    site_id: str
    heartbeat_s: float
    started_at: float
    time: float
    buffer_pending: int | None
    buffer_dropped: int | None
    dead_letters: int | None
    sink_written: int | None
    bad_messages: int
    devices: list[DeviceHealth]
    # the MQTT brokers the gateway uses and what they dropped (gateway/brokerstats.py)
    brokers: list[BrokerHealth] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HealthRegistry:
    """Thread-safe: Modbus reports from the event loop thread, MQTT from paho's, readers from HTTP."""

    def __init__(self, devices: Iterable[str] = (), *, gateway_id: str = "", site_id: str = "",
                 heartbeat_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.gateway_id = gateway_id
        self.site_id = site_id
        self.heartbeat_s = heartbeat_s
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}
        self._sources: dict[str, Callable[[], int]] = {}
        self._brokers: Callable[[], list[BrokerHealth]] = list
        self._bad_messages = 0
        self.started_at = wall()
        for device in devices:
            self._device(device)  # listed from the start: a meter never heard from shows as down

    def bind(self, **sources: Callable[[], int]) -> None:
        """Gateway-wide figures read on demand: pending, dropped, dead_letters, written."""
        self._sources.update(sources)

    def bind_brokers(self, brokers: Callable[[], list[BrokerHealth]]) -> None:
        """The brokers' dropped-message counters, read on demand like the figures above."""
        self._brokers = brokers

    # --- reporting (collectors) ---

    def _succeeded(self, device_id: str, n_readings: int) -> _Device:
        d = self._device(device_id)
        d.polls += 1
        d.readings += n_readings
        d.consecutive_failures = 0
        d.last_error = None
        d.last_success = self._wall()
        d.rate.add(self._clock())
        return d

    def poll_ok(self, device_id: str, latency_s: float, n_readings: int) -> None:
        with self._lock:
            d = self._succeeded(device_id, n_readings)
            d.latency_last = latency_s
            d.latency_sum += latency_s
            d.latency_count += 1
            d.latencies.append(latency_s)

    def poll_failed(self, device_id: str, error: str) -> None:
        with self._lock:
            d = self._device(device_id)
            d.polls += 1
            d.failures += 1
            d.consecutive_failures += 1
            d.last_error = error[:ERROR_MAX_CHARS]

    def message_ok(self, device_id: str, n_readings: int) -> None:
        with self._lock:
            self._succeeded(device_id, n_readings)

    def message_bad(self, device_id: str | None, reason: str) -> None:
        """A payload that could not be used; without a device it only counts gateway-wide."""
        with self._lock:
            self._bad_messages += 1
            if device_id is None:
                return
            d = self._device(device_id)
            d.polls += 1
            d.failures += 1
            d.consecutive_failures += 1
            d.last_error = reason[:ERROR_MAX_CHARS]

    # --- reading (exposition, heartbeat) ---

    def devices(self) -> list[DeviceHealth]:
        now = self._clock()
        with self._lock:
            return [self._view(name, d, now) for name, d in sorted(self._devices.items())]

    def snapshot(self) -> GatewayHealth:
        return GatewayHealth(
            gateway_id=self.gateway_id, site_id=self.site_id, heartbeat_s=self.heartbeat_s,
            started_at=self.started_at, time=self._wall(),
            buffer_pending=self._read("pending"), buffer_dropped=self._read("dropped"),
            dead_letters=self._read("dead_letters"), sink_written=self._read("written"),
            bad_messages=self._bad_messages, devices=self.devices(), brokers=self._brokers(),
        )

    def _read(self, name: str) -> int | None:
        source = self._sources.get(name)
        if source is None:
            return None
        try:
            return int(source())
        except Exception as exc:  # a closed buffer during shutdown must not break a scrape
            log.debug("health source unavailable", extra={"source": name, "error": str(exc)})
            return None

    def _device(self, device_id: str) -> _Device:
        d = self._devices.get(device_id)
        if d is None:
            now = self._clock()
            d = self._devices[device_id] = _Device(since=now, rate=RateWindow(now))
        return d

    @staticmethod
    def _view(name: str, d: _Device, now: float) -> DeviceHealth:
        up = d.last_success is not None and d.consecutive_failures == 0
        state = "ok" if up else ("failing" if d.consecutive_failures else "waiting")
        samples = list(d.latencies)
        return DeviceHealth(
            device=name, up=up, state=state, last_success=d.last_success, last_error=d.last_error,
            consecutive_failures=d.consecutive_failures, polls_total=d.polls,
            failures_total=d.failures, readings_total=d.readings, reads_per_second=d.rate.rate(now),
            latency_last_s=d.latency_last, latency_p50_s=percentile(samples, 0.5),
            latency_p99_s=percentile(samples, 0.99), latency_sum_s=d.latency_sum,
            latency_count=d.latency_count,
        )


_UPSERT = """
INSERT INTO gateway_heartbeats (gateway_id, site_id, time, status) VALUES (%s, %s, now(), %s)
ON CONFLICT (gateway_id) DO UPDATE
    SET site_id = excluded.site_id, time = excluded.time, status = excluded.status
"""


class HeartbeatWriter:
    """Upserts the health snapshot every ``interval_s`` on its own connection; never fatal.

    The row's time is the database's ``now()``, so "online" is judged on one clock (the
    database's) and a gateway with a drifting clock is not shown offline.
    """

    def __init__(self, database_url: str, health: HealthRegistry, interval_s: float) -> None:
        self.database_url = database_url
        self.health = health
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.beat(running=False)  # the API shows a clean shutdown at once, not after 3 intervals
        self._close()

    def beat(self, running: bool = True) -> bool:
        import psycopg
        from psycopg.types.json import Jsonb

        from lingtan.kernel.db import libpq_url

        status = {**self.health.snapshot().as_dict(), "running": running}
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(libpq_url(self.database_url), autocommit=True,
                                             connect_timeout=3)
            self._conn.execute(_UPSERT, (self.health.gateway_id, self.health.site_id, Jsonb(status)))
        except Exception as exc:
            log.warning("heartbeat write failed; will retry",
                        extra={"gateway": self.health.gateway_id, "error": str(exc)})
            self._failing = True
            self._close()
            return False
        if self._failing:
            log.info("heartbeat write restored", extra={"gateway": self.health.gateway_id})
            self._failing = False
        return True

    def _run(self) -> None:
        retry = 1.0
        while not self._stop.is_set():
            if self.beat():
                retry = 1.0
                wait = self.interval_s
            else:  # retry sooner than a full interval, backing off up to it
                wait = min(retry, self.interval_s)
                retry = min(retry * 2, self.interval_s)
            self._stop.wait(wait)

    def _close(self) -> None:
        if self._conn is not None:
            # closing a broken connection may raise; it is gone either way
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def gateway_health(cfg: Any, buffer: Any, dead_letters: Any, written: Callable[[], int]) -> HealthRegistry:
    """The registry for a gateway config, bound to its buffer, dead-letter store and sink count."""
    # a wildcard MQTT mapping names no meter itself; its meters appear as they report
    devices = [d.id for d in cfg.devices if d.device_id_from_topic is None]
    health = HealthRegistry(devices, gateway_id=cfg.gateway.id, site_id=cfg.gateway.site,
                            heartbeat_s=cfg.health.heartbeat)
    health.bind(pending=buffer.pending, dropped=lambda: buffer.counter("dropped"),
                # evicted dead letters were dead-lettered all the same
                dead_letters=lambda: dead_letters.count() + dead_letters.dropped(), written=written)
    return health
