"""Simulators → gateway → PostgreSQL → API over real sockets, in one process.

The simulated plant is frozen at a known instant, so every value the API returns can be
compared with the simulator's own truth, within what the register encoding can carry.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from gateway.config import parse_config
from gateway.runtime import Gateway
from lingtan.cli.demo import gateway_config
from lingtan.kernel.quantities import conversion
from lingtan.kernel.settings import Settings, get_settings
from simulators.modbus_server import start_modbus_server
from simulators.mqtt_publisher import start_plant_publisher, topic_for
from simulators.site import SiteModel
from tests.conftest import free_port

# 12:00 in Shenyang on midsummer day: the PV inverter is producing.
NOON = datetime(2026, 6, 20, 4, 0, tzinfo=UTC)
# SunSpec W is int16 with W_SF = 2 in the simulator: 100 W steps.
EXTRA_TOLERANCE = {("pv-inverter", "active_power"): 0.1}


class PlantServer:
    """The simulator's Modbus server on its own event loop thread."""

    def __init__(self, model: SiteModel) -> None:
        self.model = model
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.handle = self._call(start_modbus_server("127.0.0.1", 0, model))

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def publish(self) -> None:
        self._call(self.handle.publish(self.model))

    def stop(self) -> None:
        self._call(self.handle.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def plant() -> Iterator[PlantServer]:
    model = SiteModel(seed=7, start=NOON - timedelta(minutes=10))
    model.advance_to(NOON)
    server = PlantServer(model)
    yield server
    server.stop()


def tolerance(device: str, point) -> float:  # type: ignore[no-untyped-def]
    if (device, point.quantity) in EXTRA_TOLERANCE:
        return EXTRA_TOLERANCE[(device, point.quantity)]
    if point.datatype.startswith("float"):
        return 0.0  # relative float32 precision covers it
    factor = conversion(point.unit, point.quantity)[0]
    return abs(point.scale * factor) / 2 + 1e-9  # half a step of the register's resolution


def latest_values(client: TestClient, meter: str, quantity: str) -> list[dict]:
    r = client.get(f"/api/v1/meters/{meter}/readings", params={
        "quantity": quantity, "start": (NOON - timedelta(days=1)).isoformat(),
        "end": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(), "limit": 100000})
    assert r.status_code == 200, r.text
    return r.json()["points"]


def test_simulated_values_reach_the_api_exactly(db, mqtt_broker, plant, tmp_path: Path, monkeypatch,
                                                auth_headers):
    mqtt_url, protocol = mqtt_broker
    settings = Settings(sim_host="127.0.0.1", sim_modbus_port=plant.handle.port,
                        gateway_metrics_port=free_port())
    raw = gateway_config(settings, tmp_path)
    prefix = f"e2e-{plant.handle.port}"
    for device in raw["devices"]:
        if device["protocol"] == "modbus-tcp":
            device["poll"] = "200ms"
        else:
            device["topic"] = topic_for(device["id"], prefix)
    import yaml

    cfg = parse_config(yaml.safe_dump(raw))
    gateway = Gateway(cfg, db, mqtt_url, protocol)
    publisher = start_plant_publisher(mqtt_url, protocol, prefix=prefix)
    monkeypatch.setenv("LINGTAN_DATABASE_URL", db)
    get_settings.cache_clear()
    client = TestClient(create_app(), headers=auth_headers("viewer"))
    expected = [(d.id, p) for d in cfg.devices for p in d.points]
    try:
        gateway.start()
        assert gateway.mqtt is not None and gateway.mqtt.subscribed.wait(10)
        for step in range(2):
            if step == 1:  # the plant moves on; the API must follow
                plant.model.advance_to(NOON + timedelta(minutes=1))
            plant.publish()
            publisher.publish(plant.model)
            truth = plant.model.truth()
            assert all((device, p.quantity) in truth for device, p in expected)
            deadline = time.monotonic() + 30
            pending = list(expected)
            while pending and time.monotonic() < deadline:
                still = []
                for device, point in pending:
                    points = latest_values(client, device, point.quantity)
                    want = truth[(device, point.quantity)]
                    if not points or points[-1]["value"] != pytest.approx(
                            want, rel=1e-6, abs=tolerance(device, point)):
                        still.append((device, point))
                pending = still
                time.sleep(0.2)
            missing = {f"{d}/{p.quantity}": truth[(d, p.quantity)] for d, p in pending}
            assert not missing, f"step {step}: API never showed the simulator's values for {missing}"
        # the PV energy counter moved with the plant
        kwh = latest_values(client, "pv-inverter", "active_energy_export")
        assert kwh[-1]["value"] > kwh[0]["value"]
        overview = client.get("/api/v1/sites/demo-plant/kpis/now").json()
        assert overview["power"]["pv_kw"] == pytest.approx(truth[("pv-inverter", "active_power")],
                                                           abs=0.1)
    finally:
        publisher.stop()
        gateway.stop()
        get_settings.cache_clear()
