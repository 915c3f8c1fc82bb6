"""MQTT collector against the real broker: mapping, timestamps, and bad payloads."""

import json
import threading
import uuid
from datetime import UTC, datetime

import pytest

from gateway.collectors.mqtt import MqttCollector, PayloadError, compile_mapping, decode_payload
from gateway.config import parse_config
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.reading import Reading


def config(topic: str):
    return parse_config(f"""
gateway: {{id: gw, site: s}}
devices:
  - id: comp-1
    protocol: mqtt
    topic: {topic}
    timestamp: {{path: $.ts}}
    points:
      - {{quantity: active_power, path: $.power.w, unit: W}}
      - {{quantity: air_flow, path: $.flow, unit: m3/min}}
""")


def test_decode_maps_paths_units_and_payload_time():
    mapping = compile_mapping(config("t").devices[0])
    got = decode_payload(mapping, b'{"ts": "2026-11-20T08:00:00+08:00", "power": {"w": 45000},'
                                  b' "flow": 7.5}', datetime.now(UTC))
    assert got == [
        Reading(datetime(2026, 11, 20, 0, 0, tzinfo=UTC), "comp-1", "active_power", 45.0),
        Reading(datetime(2026, 11, 20, 0, 0, tzinfo=UTC), "comp-1", "air_flow", 7.5),
    ]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "comp-1: payload is not JSON"),
    (b'{"ts": "yesterday", "flow": 1}', "comp-1: timestamp"),
    (b'{"ts": "2026-11-20T08:00:00", "flow": 1}', "has no time zone"),
    (b'{"ts": 1763596800, "flow": "lots"}', "comp-1 point air_flow ($.flow): 'lots' is not a number"),
])
def test_bad_payloads_name_device_point_and_reason(payload, reason):
    mapping = compile_mapping(config("t").devices[0])
    with pytest.raises(PayloadError, match=reason.replace("(", r"\(").replace(")", r"\)")
                       .replace("$", r"\$")):
        decode_payload(mapping, payload, datetime.now(UTC))


def test_a_bad_payload_is_counted_and_the_next_good_one_still_arrives(mqtt_broker):
    url, protocol = mqtt_broker
    topic = f"test/{uuid.uuid4().hex}/telemetry"
    got: list[Reading] = []
    arrived = threading.Event()

    def emit(readings: list[Reading]) -> None:
        got.extend(readings)
        arrived.set()

    collector = MqttCollector(config(topic).devices, url, protocol, f"t-{uuid.uuid4().hex[:6]}", emit)
    collector.start()
    publisher, address = make_client(url, protocol)
    publisher.connect(address.host, address.port)
    publisher.loop_start()
    try:
        assert collector.subscribed.wait(10)
        publisher.publish(topic, b"{broken", qos=1).wait_for_publish(5)
        good = {"ts": "2026-11-20T00:00:00Z", "power": {"w": 1000}, "flow": 2}
        publisher.publish(topic, json.dumps(good), qos=1).wait_for_publish(5)
        assert arrived.wait(10)
        assert collector.malformed == 1
        assert [(r.quantity, r.value) for r in got] == [("active_power", 1.0), ("air_flow", 2.0)]
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        collector.stop()
