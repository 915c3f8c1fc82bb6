"""Wires collectors → buffer → sink and runs them until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Protocol

from gateway.brokerstats import watch_brokers
from gateway.buffer import DiskBuffer
from gateway.collectors.modbus import group_by_bus, run_bus
from gateway.collectors.mqtt import MqttCollector
from gateway.config import GatewayConfig
from gateway.deadletter import DeadLetterStore, sibling_path
from gateway.drain import Drainer, Row
from gateway.health import gateway_health
from gateway.metrics import Monitor
from gateway.sinks.postgres import PostgresSink, register_devices
from gateway.validate import Validator
from lingtan.kernel.reading import Reading
from lingtan.kernel.settings import Settings

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write_rows(self, rows: list[Row]) -> int: ...
    def close(self) -> None: ...


def make_sink(cfg: GatewayConfig, database_url: str | None, mqtt_url: str | None,
              mqtt_protocol: str) -> Sink:
    """The sink ``cfg.sinks[0]`` names: PostgreSQL (single site) or the MQTT uplink."""
    sink_cfg = cfg.sinks[0] if cfg.sinks else None
    if sink_cfg is not None and sink_cfg.type == "mqtt":
        from gateway.sinks.mqtt import MqttSink

        url = sink_cfg.url or mqtt_url
        if not url:
            raise ValueError("the mqtt sink needs `url` or LINGTAN_MQTT_URL")
        return MqttSink(url, mqtt_protocol, f"lingtan-gw-{cfg.gateway.id}-uplink", sink_cfg.topic,
                        cfg.gateway.id, cfg.gateway.site, ca_file=sink_cfg.ca_file,
                        cert_file=sink_cfg.cert_file, key_file=sink_cfg.key_file,
                        ack_timeout=sink_cfg.ack_timeout)
    if not database_url:
        raise ValueError("the postgres sink needs LINGTAN_DATABASE_URL")
    return PostgresSink(database_url)


class Gateway:
    def __init__(self, cfg: GatewayConfig, database_url: str | None, mqtt_url: str | None = None,
                 mqtt_protocol: str = "5") -> None:
        self.cfg = cfg
        self.database_url = database_url
        self.buffer = DiskBuffer(cfg.buffer.path, cfg.buffer.max_bytes, cfg.buffer.when_full)
        self.validator = Validator(cfg.devices)
        self.sink = make_sink(cfg, database_url, mqtt_url, mqtt_protocol)
        self.dead_letters = DeadLetterStore(sibling_path(cfg.buffer.path))
        # where the gateway writes the database itself it also registers its meters (behind an
        # uplink, ingest does). It only marks the rollup buckets it touched: refreshing them is
        # central work (lingtan api, ingest or rollups; docs/architecture.md), never an edge box's.
        direct = isinstance(self.sink, PostgresSink)
        self.drainer = Drainer(
            self.buffer, self.sink.write_rows, batch=cfg.sinks[0].batch if cfg.sinks else 20_000,
            before_first_write=self._register if direct else None, defer=self._intake_busy)
        self.health = gateway_health(cfg, self.buffer, self.dead_letters, lambda: self.written)
        self.monitor = Monitor(self.health, cfg.health.listen, database_url,
                               watch_brokers(cfg, mqtt_url, mqtt_protocol))
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_stop: asyncio.Event | None = None
        self._threads: list[threading.Thread] = []
        self.buses = group_by_bus([d for d in cfg.devices if d.protocol.startswith("modbus")],
                                  self.health)
        mqtt_devices = [d for d in cfg.devices if d.protocol == "mqtt"]
        self.mqtt: MqttCollector | None = None
        if mqtt_devices:
            if not mqtt_url:
                raise ValueError(
                    f"devices {[d.id for d in mqtt_devices]} use MQTT but LINGTAN_MQTT_URL is not set"
                )
            # fixed client id + persistent session: what arrives while we are down is queued
            self.mqtt = MqttCollector(mqtt_devices, mqtt_url, mqtt_protocol,
                                      f"lingtan-gw-{cfg.gateway.id}", self.emit,
                                      dead_letters=self.dead_letters, health=self.health)

    def _intake_busy(self) -> bool:
        return self.mqtt is not None and self.mqtt.intake.busy()

    @property
    def written(self) -> int:
        return self.drainer.written

    def emit(self, readings: list[Reading]) -> None:
        # every collector comes through here, so every reading is validated before it is stored
        self.buffer.append(self.validator.check(readings))

    def start(self) -> None:
        self.monitor.start()  # /metrics and heartbeats first: a stuck start is visible from outside
        self.drainer.start()
        self._threads = [threading.Thread(target=self._collect_loop, name="modbus", daemon=True)]
        for thread in self._threads:
            thread.start()
        if self.mqtt:
            self.mqtt.start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        self.monitor.stop()  # while the buffer is still open: the last heartbeat reads it
        if self.mqtt:
            self.mqtt.stop()
        if self._loop and self._async_stop and not self._loop.is_closed():  # no Modbus bus: loop ended
            self._loop.call_soon_threadsafe(self._async_stop.set)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        # let the sink deliver what was collected; the rest stays on disk for the next start
        self.drainer.stop(drain_seconds)
        self.sink.close()
        self.buffer.close()
        self.dead_letters.close()

    def _register(self) -> None:
        devices = [(d.id, d.name or d.id, d.role, d.protocol) for d in self.cfg.devices]
        register_devices(self.database_url, self.cfg.gateway.id, self.cfg.gateway.site,
                         self.cfg.gateway.site_name or self.cfg.gateway.site, devices)

    def _collect_loop(self) -> None:
        asyncio.run(self._collect())

    async def _collect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._async_stop = asyncio.Event()
        if self._stop.is_set():
            return
        await asyncio.gather(*(run_bus(bus, self.emit, self._async_stop) for bus in self.buses))


def run_gateway(cfg: GatewayConfig, settings: Settings) -> None:
    uplink = bool(cfg.sinks) and cfg.sinks[0].type == "mqtt"
    if not settings.database_url and not uplink:
        raise SystemExit("LINGTAN_DATABASE_URL is not set")
    gateway = Gateway(cfg, settings.database_url, settings.mqtt_url, settings.mqtt_protocol)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    log.info("gateway starting", extra={"gateway": cfg.gateway.id, "devices": len(cfg.devices),
                                        "buffer": str(cfg.buffer.path)})
    gateway.start()
    stopping.wait()
    log.info("gateway stopping", extra={"pending": gateway.buffer.pending()})
    gateway.stop()
