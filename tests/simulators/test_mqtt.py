"""Line telemetry published with paho and received by a real subscriber on a real broker."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lingtan.kernel.mqtt import parse_mqtt_url
from simulators.mqtt_publisher import (
    LINE_TOPIC,
    PROTOCOLS,
    line_telemetry,
    start_line_publisher,
)
from simulators.site import SiteModel
from tests.conftest import free_port

RUNNING = datetime(2026, 6, 16, 2, 0, tzinfo=UTC)  # Tuesday 10:00 local


def test_topic_and_url_parsing() -> None:
    assert LINE_TOPIC == "demo-plant/line-1/telemetry"
    a = parse_mqtt_url("mqtt://user:p%40ss@broker.local:1884")
    assert (a.host, a.port, a.username, a.password) == ("broker.local", 1884, "user", "p@ss")
    assert parse_mqtt_url("mqtt://10.0.0.5").port == 1883
    with pytest.raises(ValueError, match="mqtt://"):
        parse_mqtt_url("http://x:1883")


def test_payload_shape() -> None:
    model = SiteModel(7, RUNNING)
    model.advance_to(RUNNING + timedelta(minutes=5))
    p = line_telemetry(model)
    assert set(p) == {"ts", "count", "rate_per_min", "state", "power_kw"}
    assert datetime.fromisoformat(p["ts"]) == model.now and p["ts"].endswith("+00:00")
    assert isinstance(p["count"], int) and p["count"] == model.truth()[("line-1", "production_count")]
    assert p["state"] in ("running", "stopped")
    json.dumps(p)


def _protocols(broker_protocol: str) -> list[str]:
    # The embedded broker speaks only 3.1.1; Mosquitto speaks both.
    return ["3.1.1"] if broker_protocol == "3.1.1" else list(PROTOCOLS)


def _roundtrip(url: str, broker_protocol: str, protocol: str, model: SiteModel) -> mqtt.MQTTMessage:
    """Publish once with ``protocol`` and return what a subscriber received."""
    addr = parse_mqtt_url(url)
    topic = f"lingtan-test/{uuid.uuid4().hex}/line-1/telemetry"
    received: list[mqtt.MQTTMessage] = []
    subscribed, got = threading.Event(), threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=PROTOCOLS[broker_protocol])
    sub.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, msg: (received.append(msg), got.set())
    if addr.username:
        sub.username_pw_set(addr.username, addr.password)
    sub.connect(addr.host, addr.port)
    sub.loop_start()
    publisher = None
    try:
        assert subscribed.wait(10)
        publisher = start_line_publisher(url, protocol, topic=topic)
        assert publisher.publish(model)
        assert got.wait(10), f"nothing received over MQTT {protocol}"
    finally:
        if publisher:
            publisher.stop()
        sub.disconnect()
        sub.loop_stop()
    assert received[0].topic == topic
    return received[0]


def test_published_telemetry_is_received(mqtt_broker: tuple[str, str]) -> None:
    url, broker_protocol = mqtt_broker
    model = SiteModel(7, RUNNING)
    model.advance_to(RUNNING + timedelta(minutes=5))
    for protocol in _protocols(broker_protocol):
        msg = _roundtrip(url, broker_protocol, protocol, model)
        assert msg.qos == 1
        assert json.loads(msg.payload) == json.loads(json.dumps(line_telemetry(model)))


def test_unreachable_broker_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    model = SiteModel(7, RUNNING)
    publisher = start_line_publisher(f"mqtt://127.0.0.1:{free_port()}", "5")
    try:
        with caplog.at_level(logging.WARNING, logger="simulators.mqtt_publisher"):
            # Queued while disconnected, until the queue is full; then refused and logged once.
            results = [publisher.publish(model) for _ in range(1005)]
    finally:
        publisher.stop()
    assert results[0] is True
    assert results[-1] is False
    failures = [r for r in caplog.records if r.getMessage() == "MQTT publish failed"]
    assert len(failures) == 1
    assert failures[0].topic == LINE_TOPIC  # structured fields ride along
