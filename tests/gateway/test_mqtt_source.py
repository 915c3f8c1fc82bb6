"""MQTT source against a private Mosquitto: wildcards, device id from the topic, dead letters,
and a persistent session that delivers what was published while the collector was down."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.collectors.mqtt import MqttCollector, PayloadError, compile_mapping, decode_payload, probe
from gateway.config import parse_config
from gateway.deadletter import DeadLetterStore
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.reading import Reading
from tests.gateway.mosquitto import Mosquitto


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto-source"))
    b.start()
    yield b
    b.stop()


def fleet_config(prefix: str):
    return parse_config(f"""
gateway: {{id: gw, site: s}}
devices:
  - id: compressors
    protocol: mqtt
    topic: {prefix}/compressors/+/telemetry
    device_id_from_topic: 2
    timestamp: {{path: $.ts}}
    points:
      - {{quantity: active_power, path: $.kw, unit: kW}}
""")


class Collected:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.cond = threading.Condition()

    def emit(self, readings: list[Reading]) -> None:
        with self.cond:
            self.readings.extend(readings)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10) -> list[Reading]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.readings) >= n, timeout), self.readings
            return list(self.readings)


def publisher(url: str, protocol: str = "5") -> mqtt.Client:
    client, address = make_client(url, protocol)
    client.connect(address.host, address.port)
    client.loop_start()
    return client


def publish(client: mqtt.Client, topic: str, payload: bytes | str) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(5)


def test_device_id_comes_from_the_topic_segment():
    mapping = compile_mapping(fleet_config("f").devices[0])
    got = decode_payload(mapping, b'{"ts": 1763596800, "kw": 37}', datetime.now(UTC),
                         "f/compressors/comp-7/telemetry")
    assert got == [Reading(datetime(2025, 11, 20, tzinfo=UTC), "comp-7", "active_power", 37.0)]
    with pytest.raises(PayloadError, match="none of the mapped paths"):
        decode_payload(mapping, b'{"ts": 1763596800}', datetime.now(UTC), "f/compressors/c/telemetry")


def test_wildcard_subscription_serves_many_devices_and_bad_payloads_are_dead_lettered(
        broker: Mosquitto, tmp_path: Path):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    got = Collected()
    dead = DeadLetterStore(tmp_path / "buffer.deadletters.db")
    collector = MqttCollector(fleet_config(prefix).devices, broker.url, "5", f"c-{prefix}", got.emit,
                              dead_letters=dead)
    collector.start()
    pub = publisher(broker.url)
    try:
        assert collector.subscribed.wait(10)
        publish(pub, f"{prefix}/compressors/comp-1/telemetry", json.dumps({"ts": 1763596800, "kw": 30}))
        bad = b'{"ts": 1763596860, "kw": "overload"}'
        publish(pub, f"{prefix}/compressors/comp-2/telemetry", bad)
        publish(pub, f"{prefix}/compressors/comp-2/telemetry", b"\xff\xfe garbage")
        publish(pub, f"{prefix}/compressors/comp-2/telemetry", json.dumps({"ts": 1763596920, "kw": 45}))
        readings = got.wait_for(2)
        assert [(r.meter_id, r.value) for r in readings] == [("comp-1", 30.0), ("comp-2", 45.0)]
        # rejects of a batch are filed after its readings are stored
        deadline = time.monotonic() + 10
        while collector.malformed < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert collector.malformed == 2
        letters = dead.recent()
        assert dead.count() == 2
        # newest first; the raw bytes are kept exactly, with the device and the reason
        assert letters[0].payload == b"\xff\xfe garbage"
        assert "comp-2: payload is not JSON" in letters[0].reason
        assert letters[1].payload == bad
        assert letters[1].topic == f"{prefix}/compressors/comp-2/telemetry"
        assert "comp-2 point active_power ($.kw): 'overload' is not a number" in letters[1].reason
    finally:
        pub.loop_stop()
        pub.disconnect()
        collector.stop()
        dead.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_published_while_the_collector_is_down_arrive_after_restart(
        broker: Mosquitto, protocol: str):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    client_id = f"lingtan-gw-{prefix}"  # fixed, like the gateway's
    first = Collected()
    collector = MqttCollector(fleet_config(prefix).devices, broker.url, protocol, client_id, first.emit)
    collector.start()
    assert collector.subscribed.wait(10)
    collector.stop()  # the gateway is down; its session (and subscription) stays on the broker

    pub = publisher(broker.url)
    try:
        for i in range(5):
            publish(pub, f"{prefix}/compressors/comp-{i}/telemetry",
                    json.dumps({"ts": 1763596800 + i, "kw": i}))
    finally:
        pub.loop_stop()
        pub.disconnect()

    second = Collected()
    collector = MqttCollector(fleet_config(prefix).devices, broker.url, protocol, client_id, second.emit)
    collector.start()
    try:
        readings = second.wait_for(5)
        assert sorted((r.meter_id, r.value) for r in readings) == [(f"comp-{i}", float(i)) for i in range(5)]
        time.sleep(0.3)
        assert len(second.readings) == 5 and not first.readings
    finally:
        collector.stop()


def test_probe_prints_messages_and_what_the_mapping_makes_of_them(broker: Mosquitto):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    done = threading.Event()

    def run() -> None:
        probe(broker.url, "5", f"{prefix}/#", fleet_config(prefix).devices, lines.append,
              count=2, seconds=10)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    pub = publisher(broker.url)
    try:
        # the probe subscribes asynchronously: publish until it has seen both messages
        deadline = time.monotonic() + 10
        while not done.is_set() and time.monotonic() < deadline:
            publish(pub, f"{prefix}/compressors/comp-3/telemetry", b'{"ts": 1763596800, "kw": 12.5}')
            publish(pub, f"{prefix}/compressors/comp-3/telemetry", b"oops")
            done.wait(0.3)
    finally:
        pub.loop_stop()
        pub.disconnect()
        thread.join(10)
    text = "\n".join(lines)
    assert f"{prefix}/compressors/comp-3/telemetry" in text
    assert "→ comp-3 active_power = 12.5" in text or "✗ compressors: comp-3: payload is not JSON" in text
