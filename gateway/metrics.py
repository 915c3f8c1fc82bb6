"""Prometheus exposition of the health registry on `health.listen`, and reading it back.

prometheus_client, with a custom collector: its exposition format and HTTP server are the
reference implementation (escaping, content negotiation, OpenMetrics) and its parser lets
`lingtan gateway status` read the very text Prometheus scrapes. The collector reads the
registry at scrape time, so there is no second copy of the numbers to keep in step. A registry
of our own (not the process-global one) lets several gateways live in one process (tests, demo).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from gateway.brokerstats import NOT_PUBLISHED, PUBLISHED, BrokerHealth, BrokerWatch
from gateway.health import HealthRegistry, HeartbeatWriter

log = logging.getLogger(__name__)


class HealthCollector(Collector):
    def __init__(self, health: HealthRegistry) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        snap = self.health.snapshot()
        info = GaugeMetricFamily("lingtan_gateway_info", "The gateway and its site.",
                                 labels=["gateway", "site"])
        info.add_metric([snap.gateway_id, snap.site_id], 1)
        yield info
        yield from self._devices(snap.devices)
        yield from self._brokers(snap.brokers)
        for name, doc, value, kind in (
            ("lingtan_buffer_pending_readings", "Readings in the disk buffer not yet delivered.",
             snap.buffer_pending, GaugeMetricFamily),
            ("lingtan_buffer_dropped_readings", "Readings dropped because the buffer was full.",
             snap.buffer_dropped, CounterMetricFamily),
            ("lingtan_dead_letters", "Messages kept as dead letters (undecodable).",
             snap.dead_letters, CounterMetricFamily),
            ("lingtan_sink_written_readings", "Readings the sink committed since start.",
             snap.sink_written, CounterMetricFamily),
            ("lingtan_mqtt_bad_messages", "MQTT messages that could not be used.",
             snap.bad_messages, CounterMetricFamily),
        ):
            if value is not None:  # unknown (e.g. buffer closing) is absent, never a false 0
                yield kind(name, doc, value=value)

    @staticmethod
    def _devices(devices: list[Any]) -> Iterator[Metric]:
        labels = ["device"]
        up = GaugeMetricFamily("lingtan_device_up", "1 if the last poll/message succeeded.", labels=labels)
        fails = GaugeMetricFamily("lingtan_device_consecutive_failures",
                                  "Failed polls/messages since the last success.", labels=labels)
        last = GaugeMetricFamily("lingtan_device_last_success_timestamp_seconds",
                                 "Unix time of the last successful poll/message.", labels=labels)
        rate = GaugeMetricFamily("lingtan_device_reads_per_second",
                                 "Successful polls/messages per second, last 60 s.", labels=labels)
        latest = GaugeMetricFamily("lingtan_device_poll_latency_last_seconds",
                                   "Duration of the last successful poll.", labels=labels)
        latency = SummaryMetricFamily("lingtan_device_poll_latency_seconds",
                                      "Successful poll duration (quantiles over the last 128).",
                                      labels=labels)
        readings = CounterMetricFamily("lingtan_device_readings", "Readings emitted.", labels=labels)
        polls = CounterMetricFamily("lingtan_device_polls", "Polls/messages handled.", labels=labels)
        failed = CounterMetricFamily("lingtan_device_failures", "Failed polls/messages.", labels=labels)
        # The error text as a label of an info-style gauge: one series per device at a time, and
        # the only way the text reaches `lingtan gateway status` through the exposition.
        error = GaugeMetricFamily("lingtan_device_last_error_info", "The last error, if any.",
                                  labels=["device", "error"])
        for d in devices:
            key = [d.device]
            up.add_metric(key, 1 if d.up else 0)
            fails.add_metric(key, d.consecutive_failures)
            if d.last_success is not None:
                last.add_metric(key, d.last_success)
            rate.add_metric(key, d.reads_per_second)
            if d.latency_last_s is not None:
                latest.add_metric(key, d.latency_last_s)
            for q, value in (("0.5", d.latency_p50_s), ("0.99", d.latency_p99_s)):
                if value is not None:
                    latency.samples.append(Sample(latency.name, {"device": d.device, "quantile": q}, value))
            latency.add_metric(key, d.latency_count, d.latency_sum_s)
            readings.add_metric(key, d.readings_total)
            polls.add_metric(key, d.polls_total)
            failed.add_metric(key, d.failures_total)
            if d.last_error:
                error.add_metric([d.device, d.last_error], 1)
        yield from (up, fails, last, rate, latest, latency, readings, polls, failed, error)

    @staticmethod
    def _brokers(brokers: list[BrokerHealth]) -> Iterator[Metric]:
        if not brokers:  # Modbus into PostgreSQL: no broker, nothing to show
            return
        labels = ["broker"]
        # role and $SYS state as labels of an info-style gauge, like a device's last error
        info = GaugeMetricFamily("lingtan_broker_info", "An MQTT broker this gateway uses, its role"
                                 " and whether it publishes its dropped-message counter ($SYS).",
                                 labels=["broker", "role", "sys"])
        connected = GaugeMetricFamily("lingtan_broker_connected",
                                      "1 while the gateway's $SYS reader is connected.", labels=labels)
        dropped = CounterMetricFamily(
            "lingtan_broker_dropped_messages",
            "Messages the broker dropped (a client's queue over max_queued_messages) since this"
            " gateway started, summed across broker restarts; absent where the broker does not"
            " publish $SYS/broker/publish/messages/dropped.", labels=labels)
        reported = GaugeMetricFamily(
            "lingtan_broker_reported_dropped_messages",
            "The broker's own $SYS/broker/publish/messages/dropped as last published: every client,"
            " since the broker started.", labels=labels)
        last = GaugeMetricFamily("lingtan_broker_last_drop_timestamp_seconds",
                                 "Unix time the gateway last saw the broker's counter rise.",
                                 labels=labels)
        restarts = CounterMetricFamily("lingtan_broker_restarts",
                                       "Broker restarts seen since this gateway started.", labels=labels)
        for b in brokers:
            key = [b.broker]
            info.add_metric([b.broker, b.role, b.state], 1)
            connected.add_metric(key, 1 if b.connected else 0)
            if b.dropped_since_start is not None:  # unknown is absent, never a false 0
                dropped.add_metric(key, b.dropped_since_start)
            if b.broker_dropped is not None:
                reported.add_metric(key, b.broker_dropped)
            if b.last_drop is not None:
                last.add_metric(key, b.last_drop)
            restarts.add_metric(key, b.broker_restarts)
        yield from (info, connected, dropped, reported, last, restarts)


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"health.listen {listen!r} is not host:port")
    return host.strip("[]"), int(port)


class Monitor:
    """The gateway's outward health: /metrics on `listen`, the heartbeat row and the brokers'
    dropped-message counters they show; none of them is fatal."""

    def __init__(self, health: HealthRegistry, listen: str | None, database_url: str | None,
                 brokers: list[BrokerWatch] | None = None) -> None:
        self.health = health
        self.listen = listen
        self.port: int | None = None
        self._server: Any = None
        self._heartbeat = (HeartbeatWriter(database_url, health, health.heartbeat_s)
                           if database_url else None)
        self.brokers = list(brokers or [])
        if self.brokers:
            health.bind_brokers(lambda: [b.snapshot() for b in self.brokers])

    def start(self) -> None:
        if self.listen:
            host, port = split_listen(self.listen)
            registry = CollectorRegistry(auto_describe=False)
            registry.register(HealthCollector(self.health))
            try:
                self._server, _ = start_http_server(port, host, registry=registry)
                self.port = self._server.server_port
                log.info("metrics listening", extra={"url": f"http://{host}:{self.port}/metrics"})
            except OSError as exc:
                # collecting matters more than being scraped: carry on without /metrics
                log.error("cannot serve metrics", extra={"listen": self.listen, "error": str(exc)})
        for broker in self.brokers:
            broker.start()
        if self._heartbeat is not None:
            self._heartbeat.start()

    def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()  # its last beat still reads the brokers' counters
        for broker in self.brokers:
            broker.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- reading it back: `lingtan gateway status` ---


@dataclass
class DeviceRow:
    device: str
    up: bool = False
    consecutive_failures: int = 0
    last_success: float | None = None
    last_error: str | None = None
    latency_p50_s: float | None = None
    reads_per_second: float = 0.0
    polls_total: int = 0


class NotAnswering(Exception):
    pass


def fetch_metrics(listen: str, timeout: float = 3.0) -> str:
    host, port = split_listen(listen)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # a wildcard bind is reached on loopback
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as reply:
            return reply.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        raise NotAnswering(f"no gateway answering on {host}:{port} — is `lingtan gateway run` "
                           f"running? ({getattr(exc, 'reason', exc)})") from None


def parse_metrics(text: str) -> tuple[list[DeviceRow], dict[str, float]]:
    """Device rows and gateway-wide figures (by sample name) from the exposition text."""
    rows: dict[str, DeviceRow] = {}
    overall: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            device = s.labels.get("device")
            if "broker" in s.labels:
                continue  # parse_brokers
            if device is None:
                overall[s.name] = s.value
                continue
            row = rows.setdefault(device, DeviceRow(device))
            if s.name == "lingtan_device_up":
                row.up = s.value == 1
            elif s.name == "lingtan_device_consecutive_failures":
                row.consecutive_failures = int(s.value)
            elif s.name == "lingtan_device_last_success_timestamp_seconds":
                row.last_success = s.value
            elif s.name == "lingtan_device_last_error_info":
                row.last_error = s.labels.get("error")
            elif s.name == "lingtan_device_poll_latency_seconds" and s.labels.get("quantile") == "0.5":
                row.latency_p50_s = s.value
            elif s.name == "lingtan_device_reads_per_second":
                row.reads_per_second = s.value
            elif s.name == "lingtan_device_polls_total":
                row.polls_total = int(s.value)
    return sorted(rows.values(), key=lambda r: r.device), overall


def parse_brokers(text: str) -> list[BrokerHealth]:
    """The brokers' rows from the exposition text (none for a gateway without a broker)."""
    rows: dict[str, BrokerHealth] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = s.labels.get("broker")
            if name is None:
                continue
            row = rows.setdefault(name, BrokerHealth(name, "", "", False, None, None, None))
            if s.name == "lingtan_broker_info":
                row.role, row.state = s.labels.get("role", ""), s.labels.get("sys", "")
            elif s.name == "lingtan_broker_connected":
                row.connected = s.value == 1
            elif s.name == "lingtan_broker_dropped_messages_total":
                row.dropped_since_start = int(s.value)
            elif s.name == "lingtan_broker_reported_dropped_messages":
                row.broker_dropped = int(s.value)
            elif s.name == "lingtan_broker_last_drop_timestamp_seconds":
                row.last_drop = s.value
            elif s.name == "lingtan_broker_restarts_total":
                row.broker_restarts = int(s.value)
    return sorted(rows.values(), key=lambda r: r.broker)


def brokers_from_status(status: dict[str, Any]) -> list[BrokerHealth]:
    """The same rows from a heartbeat's status JSON (absent in a gateway's older beats)."""
    return [BrokerHealth(b["broker"], b.get("role", ""), b.get("state", ""), bool(b.get("connected")),
                         b.get("dropped_since_start"), b.get("broker_dropped"), b.get("last_drop"),
                         int(b.get("broker_restarts") or 0))
            for b in status.get("brokers") or []]


def rows_from_status(status: dict[str, Any]) -> tuple[list[DeviceRow], dict[str, float]]:
    """The same rows from a heartbeat's status JSON."""
    rows = [DeviceRow(d["device"], d["up"], d["consecutive_failures"], d["last_success"],
                      d["last_error"], d["latency_p50_s"], d["reads_per_second"], d["polls_total"])
            for d in status.get("devices", [])]
    names = {"buffer_pending": "lingtan_buffer_pending_readings",
             "buffer_dropped": "lingtan_buffer_dropped_readings_total",
             "dead_letters": "lingtan_dead_letters_total",
             "sink_written": "lingtan_sink_written_readings_total"}
    overall = {metric: float(status[key]) for key, metric in names.items() if status.get(key) is not None}
    return rows, overall


def _age(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "never"
    seconds = max(0.0, now - epoch)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def broker_line(b: BrokerHealth, now: float) -> str:
    """One line per broker: what it dropped, or why that cannot be told."""
    head = f"broker {b.broker} ({b.role}): "
    if b.state == NOT_PUBLISHED:
        text = "dropped messages not published ($SYS/broker/publish/messages/dropped)"
    elif b.state != PUBLISHED:
        text = "waiting for $SYS"
    else:
        text = f"dropped {b.dropped_since_start or 0} since gateway start"
        if b.broker_dropped is not None:
            text += f" · broker counter {b.broker_dropped}"
        if b.last_drop is not None:
            text += f" · last drop {_age(b.last_drop, now)}"
        if b.dropped_since_start:
            text += " · raise max_queued_messages / max_inflight_messages"
    return head + text + ("" if b.connected else " · not connected")


def format_table(rows: list[DeviceRow], overall: dict[str, float], now: float, width: int = 60,
                 brokers: list[BrokerHealth] | None = None) -> str:
    header = ("device", "state", "last success", "failures", "latency", "reads/s", "last error")
    lines = [header]
    for r in rows:
        state = "ok" if r.up else ("failing" if r.consecutive_failures else "waiting")
        latency = "-" if r.latency_p50_s is None else f"{r.latency_p50_s * 1000:.0f}ms"
        error = (r.last_error or "")[:width]
        lines.append((r.device, state, _age(r.last_success, now), str(r.consecutive_failures),
                      latency, f"{r.reads_per_second:.2f}", error))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
           for line in lines]

    def figure(name: str) -> str:
        return f"{overall[name]:.0f}" if name in overall else "?"

    out.append("")
    out.append(f"buffer pending {figure('lingtan_buffer_pending_readings')}"
               f" · dropped {figure('lingtan_buffer_dropped_readings_total')}"
               f" · dead letters {figure('lingtan_dead_letters_total')}"
               f" · written {figure('lingtan_sink_written_readings_total')}")
    out.extend(broker_line(b, now) for b in brokers or [])
    return "\n".join(out)


def status_text(gateway_id: str, listen: str | None, database_url: str | None = None) -> str:
    """The `lingtan gateway status` table: live from /metrics, or from the heartbeat row when
    ``database_url`` is given. Raises NotAnswering with a message fit for the operator."""
    import time

    now = time.time()
    if database_url is None:
        if not listen:
            raise NotAnswering("health.listen is off in this config: use --from-db")
        text = fetch_metrics(listen)
        rows, overall = parse_metrics(text)
        return format_table(rows, overall, now, brokers=parse_brokers(text))
    import psycopg

    from lingtan.kernel.db import libpq_url

    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        row = conn.execute("SELECT status, extract(epoch FROM now() - time) FROM gateway_heartbeats"
                           " WHERE gateway_id = %s", (gateway_id,)).fetchone()
    if row is None:
        raise NotAnswering(f"gateway {gateway_id!r} has never written a heartbeat")
    status, age = row[0], float(row[1])
    online = bool(status.get("running", True)) and age <= 3 * float(status.get("heartbeat_s", 30))
    rows, overall = rows_from_status(status)
    # "now" on the gateway's clock (its last beat + the beat's age on the database clock), so
    # device ages are right even when this machine's clock differs from the gateway's
    head = f"gateway {gateway_id}: heartbeat {age:.0f}s ago ({'online' if online else 'offline'})"
    return head + "\n" + format_table(rows, overall, float(status.get("time", now)) + age,
                                       brokers=brokers_from_status(status))
