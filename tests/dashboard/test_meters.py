"""Meters & gateways: what the gateways' MQTT brokers dropped, from real heartbeats, in both
languages; a gateway without a broker shows nothing there."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from dashboard.controls import view_of
from dashboard.data import make_reader
from dashboard.i18n import t
from dashboard.page import PageQuery
from dashboard.pages import meters
from gateway.brokerstats import BrokerHealth
from gateway.health import HealthRegistry, HeartbeatWriter
from gateway.sinks.postgres import register_devices
from tests.dashboard.test_i18n import _texts

LAST_DROP = datetime(2026, 6, 15, 1, 30, tzinfo=UTC)  # 09:30 on the site's clock (Shanghai)


def beat(db: str, gateway_id: str, site: str, brokers: list[BrokerHealth]) -> None:
    health = HealthRegistry(["m"], gateway_id=gateway_id, site_id=site)
    if brokers:
        health.bind_brokers(lambda: brokers)
    assert HeartbeatWriter(db, health, 30).beat()


@pytest.fixture
def site(db: str) -> str:
    site = f"broker-site-{uuid.uuid4().hex[:6]}"
    register_devices(db, "seed-gw", site, "Broker site", [("m", "Meter", "grid_import", "modbus-tcp")])
    beat(db, f"{site}-mqtt", site, [
        BrokerHealth("10.0.0.5:1883", "collector", "published", True, 12, 340, LAST_DROP.timestamp()),
        BrokerHealth("central:8883", "uplink", "not published", True, None, None, None),
    ])
    beat(db, f"{site}-modbus", site, [])
    return site


def rows(db: str, site: str, lang: str) -> dict[str, list[str]]:
    view = view_of(site, None, None, None, None, site)
    data = meters.load(make_reader(db), PageQuery(view, datetime.now(UTC)))
    table = meters.gateway_table(data, lang)  # type: ignore[arg-type]
    head = [_texts(th)[0] for th in table.children[0].children.children]
    column = head.index(t("gateways.broker", lang))  # type: ignore[arg-type]
    out = {}
    for tr in table.children[1].children:
        cells = tr.children
        out[_texts(cells[0])[0]] = _texts(cells[column])
    return out


def test_broker_drops_per_gateway_in_english(db: str, site: str):
    found = rows(db, site, "en")
    assert found[f"{site}-mqtt"] == [
        "12 (broker: 340)",
        "MQTT broker 10.0.0.5:1883 (collector): messages it dropped since the gateway started; in"
        " brackets its own count since it started. Last drop: 15 Jun 2026, 09:30:00",
        "not published",
        "MQTT broker central:8883 (uplink): messages it dropped since the gateway started; in"
        " brackets its own count since it started. Last drop: never",
    ]
    assert found[f"{site}-modbus"] == ["—"]


def test_broker_drops_per_gateway_in_chinese(db: str, site: str):
    found = rows(db, site, "zh")
    assert found[f"{site}-mqtt"][0] == "12 （服务器累计 340）"
    assert found[f"{site}-mqtt"][2] == "未公布"
    assert "（采集）" in found[f"{site}-mqtt"][1] and "（上行）" in found[f"{site}-mqtt"][3]
    assert found[f"{site}-modbus"] == ["—"]
