"""Wires collectors → buffer → sink and runs them until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time

from gateway.buffer import DiskBuffer
from gateway.collectors.modbus import group_by_bus, run_bus
from gateway.collectors.mqtt import MqttCollector
from gateway.config import GatewayConfig
from gateway.sinks.postgres import PostgresSink, register_devices
from lingtan.reading import Reading
from lingtan.settings import Settings

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, cfg: GatewayConfig, database_url: str, mqtt_url: str | None = None,
                 mqtt_protocol: str = "5") -> None:
        self.cfg = cfg
        self.database_url = database_url
        self.buffer = DiskBuffer(cfg.buffer.path, cfg.buffer.max_bytes)
        self.sink = PostgresSink(database_url)
        self.batch = cfg.sinks[0].batch if cfg.sinks else 5000
        self.written = 0
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_stop: asyncio.Event | None = None
        self._threads: list[threading.Thread] = []
        self.buses = group_by_bus([d for d in cfg.devices if d.protocol == "modbus-tcp"])
        mqtt_devices = [d for d in cfg.devices if d.protocol == "mqtt"]
        self.mqtt: MqttCollector | None = None
        if mqtt_devices:
            if not mqtt_url:
                raise ValueError(
                    f"devices {[d.id for d in mqtt_devices]} use MQTT but LINGTAN_MQTT_URL is not set"
                )
            self.mqtt = MqttCollector(mqtt_devices, mqtt_url, mqtt_protocol,
                                      f"lingtan-gw-{cfg.gateway.id}", self.buffer.append)

    def emit(self, readings: list[Reading]) -> None:
        self.buffer.append(readings)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._sink_loop, name="sink", daemon=True),
            threading.Thread(target=self._collect_loop, name="modbus", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if self.mqtt:
            self.mqtt.start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        if self.mqtt:
            self.mqtt.stop()
        if self._loop and self._async_stop:
            self._loop.call_soon_threadsafe(self._async_stop.set)
        deadline = time.monotonic() + drain_seconds
        while self.buffer.pending() and time.monotonic() < deadline:
            time.sleep(0.1)  # let the sink deliver what was collected; the rest stays on disk
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.sink.close()
        self.buffer.close()

    def _register(self) -> None:
        devices = [(d.id, d.name or d.id, d.role, d.protocol) for d in self.cfg.devices]
        register_devices(self.database_url, self.cfg.gateway.id, self.cfg.gateway.site,
                         self.cfg.gateway.site_name or self.cfg.gateway.site, devices)

    def _sink_loop(self) -> None:
        registered = False
        delay = 0.5
        while not self._stop.is_set():
            try:
                if not registered:
                    self._register()
                    registered = True
                last_id, readings = self.buffer.peek(self.batch)
                if not readings:
                    self._stop.wait(0.5)
                    continue
                self.written += self.sink.write(readings)
                self.buffer.ack(last_id)
                delay = 0.5
            except Exception as exc:
                log.warning("sink write failed; will retry", extra={"error": str(exc),
                                                                    "retry_in_s": delay})
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _collect_loop(self) -> None:
        asyncio.run(self._collect())

    async def _collect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._async_stop = asyncio.Event()
        if self._stop.is_set():
            return
        await asyncio.gather(*(run_bus(bus, self.emit, self._async_stop) for bus in self.buses))


def run_gateway(cfg: GatewayConfig, settings: Settings) -> None:
    if not settings.database_url:
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
