"""Acknowledge only what is stored: the MQTT collector's intake against the real broker.

A store that refuses a batch leaves it unacknowledged: retried in the same process, or — if the
process goes away first — redelivered by the broker to the persistent session.
"""

from __future__ import annotations

import json
import threading
import uuid

from gateway.collectors.mqtt import MqttCollector
from gateway.config import parse_config
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.reading import Reading


def devices(prefix: str):
    return parse_config(f"""
gateway: {{id: gw, site: s}}
devices:
  - id: meters
    protocol: mqtt
    topic: {prefix}/+/telemetry
    device_id_from_topic: 1
    timestamp: {{path: $.ts}}
    points: [{{quantity: active_power, path: $.kw, unit: kW}}]
""").devices


class Store:
    """An emit that refuses the first ``failures`` batches, like a full or locked disk."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.readings: list[Reading] = []
        self.cond = threading.Condition()

    def emit(self, readings: list[Reading]) -> None:
        with self.cond:
            self.calls += 1
            if self.calls <= self.failures:
                raise OSError("database or disk is full")
            self.readings += readings
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 15) -> list[Reading]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.readings) >= n, timeout), self.readings
            return list(self.readings)


def publish(url: str, prefix: str, n: int) -> None:
    pub, address = make_client(url, "5")
    pub.connect(address.host, address.port)
    pub.loop_start()
    try:
        for i in range(n):
            pub.publish(f"{prefix}/m-{i}/telemetry", json.dumps({"ts": 1763596800 + i, "kw": i}),
                        qos=1).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_a_refused_batch_is_retried_and_then_stored_once(mqtt_broker):
    url, _ = mqtt_broker
    prefix = f"intake-{uuid.uuid4().hex[:8]}"
    store = Store(failures=2)
    collector = MqttCollector(devices(prefix), url, "5", f"gw-{prefix}", store.emit)
    collector.start()
    try:
        assert collector.subscribed.wait(10)
        publish(url, prefix, 3)
        got = store.wait_for(3)
        assert sorted(r.value for r in got) == [0.0, 1.0, 2.0]
        assert store.calls >= 3 and collector.intake.last_error is None
    finally:
        collector.stop()


def test_what_was_never_stored_was_never_acknowledged(mqtt_broker):
    """A gateway whose store refuses everything goes away; the broker redelivers every message
    to the next start on the same session, because none was acknowledged."""
    url, _ = mqtt_broker
    prefix = f"intake-{uuid.uuid4().hex[:8]}"
    client_id = f"gw-{prefix}"
    broken = Store(failures=10**9)
    first = MqttCollector(devices(prefix), url, "5", client_id, broken.emit)
    first.start()
    try:
        assert first.subscribed.wait(10)
        publish(url, prefix, 5)
        with broken.cond:
            assert broken.cond.wait_for(lambda: broken.calls >= 2, 10)
    finally:
        first.stop()
    assert broken.readings == []
    working = Store(failures=0)
    second = MqttCollector(devices(prefix), url, "5", client_id, working.emit)
    second.start()
    try:
        got = working.wait_for(5)
        assert sorted(r.value for r in got) == [0.0, 1.0, 2.0, 3.0, 4.0]
    finally:
        second.stop()
    # leave no session behind on the shared broker
    cleanup, address = make_client(url, "5", client_id)
    cleanup.connect(address.host, address.port, clean_start=True)
    cleanup.disconnect()
