"""The line's and the sub-meters' telemetry published with paho and received by a real subscriber
on a real broker."""

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
    MAX_QUEUED,
    PROTOCOLS,
    line_telemetry,
    messages,
    start_plant_publisher,
    topic_for,
)
from simulators.site import MQTT_SUBMETERS, SiteModel
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


def test_every_sub_meter_on_mqtt_sends_power_and_its_counter_to_the_wh() -> None:
    model = SiteModel(7, RUNNING)
    model.advance_to(RUNNING + timedelta(minutes=5))
    truth = model.truth()
    sent = dict(messages(model))
    assert next(iter(sent)) == LINE_TOPIC and len(sent) == 1 + len(MQTT_SUBMETERS) >= 21
    for meter in MQTT_SUBMETERS:
        p = sent[topic_for(meter)]
        assert set(p) == {"ts", "power_kw", "energy_kwh"} and p["ts"] == model.now.isoformat()
        assert p["power_kw"] == pytest.approx(truth[(meter, "active_power")], abs=5e-4)
        assert p["energy_kwh"] == pytest.approx(truth[(meter, "active_energy_import")], abs=5e-4)


def _protocols(broker_protocol: str) -> list[str]:
    # The embedded broker speaks only 3.1.1; Mosquitto speaks both.
    return ["3.1.1"] if broker_protocol == "3.1.1" else list(PROTOCOLS)


def _roundtrip(url: str, broker_protocol: str, protocol: str,
               model: SiteModel) -> dict[str, mqtt.MQTTMessage]:
    """Publish once with ``protocol`` and return what a subscriber received, by topic."""
    addr = parse_mqtt_url(url)
    prefix = f"lingtan-test/{uuid.uuid4().hex}"
    received: dict[str, mqtt.MQTTMessage] = {}
    subscribed, got = threading.Event(), threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=PROTOCOLS[broker_protocol])
    sub.on_connect = lambda c, *_: c.subscribe(topic_for("+", prefix), qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received[msg.topic] = msg
        if len(received) == 1 + len(MQTT_SUBMETERS):
            got.set()

    sub.on_message = on_message
    if addr.username:
        sub.username_pw_set(addr.username, addr.password)
    sub.connect(addr.host, addr.port)
    sub.loop_start()
    publisher = None
    try:
        assert subscribed.wait(10)
        publisher = start_plant_publisher(url, protocol, prefix=prefix)
        assert publisher.publish(model)
        assert got.wait(10), f"not everything received over MQTT {protocol}: {sorted(received)}"
    finally:
        if publisher:
            publisher.stop()
        sub.disconnect()
        sub.loop_stop()
    return {topic.removeprefix(prefix + "/"): msg for topic, msg in received.items()}


def test_published_telemetry_is_received(mqtt_broker: tuple[str, str]) -> None:
    url, broker_protocol = mqtt_broker
    model = SiteModel(7, RUNNING)
    model.advance_to(RUNNING + timedelta(minutes=5))
    for protocol in _protocols(broker_protocol):
        got = _roundtrip(url, broker_protocol, protocol, model)
        sent = {topic.removeprefix("demo-plant/"): payload for topic, payload in messages(model)}
        assert set(got) == set(sent)
        assert all(msg.qos == 1 for msg in got.values())
        assert {t: json.loads(m.payload) for t, m in got.items()} == json.loads(json.dumps(sent))
        assert json.loads(got["line-1/telemetry"].payload) == json.loads(json.dumps(line_telemetry(model)))


def test_unreachable_broker_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    model = SiteModel(7, RUNNING)
    publisher = start_plant_publisher(f"mqtt://127.0.0.1:{free_port()}", "5")
    try:
        with caplog.at_level(logging.WARNING, logger="simulators.mqtt_publisher"):
            # Queued while disconnected, until the queue is full; then refused and logged once.
            rounds = MAX_QUEUED // len(messages(model)) + 5
            results = [publisher.publish(model) for _ in range(rounds)]
    finally:
        publisher.stop()
    assert results[0] is True
    assert results[-1] is False
    failures = [r for r in caplog.records if r.getMessage() == "MQTT publish failed"]
    assert len(failures) == 1
    assert failures[0].topic in dict(messages(model))  # structured fields ride along
