"""Uplink codec, and gateway → MQTT uplink → ingest worker → PostgreSQL against a private
Mosquitto (which one test stops and restarts mid-stream) and the real database."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gateway import uplink
from gateway.config import parse_config
from gateway.ingest import IngestWorker
from gateway.runtime import Gateway
from gateway.sinks.postgres import PostgresSink
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Quality, Reading
from tests.gateway.mosquitto import Mosquitto

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def make_readings(n: int, start: int = 0, meters: int = 3) -> list[Reading]:
    # microsecond offsets on purpose: the uplink must keep the exact reading key
    return [Reading(T0 + timedelta(seconds=i, microseconds=7), f"m-{i % meters}", "active_power",
                    i * 0.5, Quality.GOOD if i % 7 else Quality.ESTIMATED)
            for i in range(start, start + n)]


def test_codec_round_trip_is_exact_and_compact():
    readings = [*make_readings(50), Reading(T0, "m-x", "temperature", math.inf),
                Reading(T0, "m-x", "voltage", -0.0)]
    payload = uplink.encode("gw-1", "plant", readings)
    batch = uplink.decode(payload)
    assert (batch.gateway, batch.site) == ("gw-1", "plant")
    assert batch.readings == readings
    assert payload.count(b"active_power") == 1  # dictionary-coded, not repeated per row
    assert uplink.decode(uplink.encode("g", "s", [])).readings == []


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\x00\x01", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"v": 2}', "unsupported payload version 2"),
    (b'{"v":1,"g":"g","s":"s","t":0,"m":["a"],"q":["watts"],"r":[]}', "unknown quantity 'watts'"),
    (b'{"v":1,"g":"g","s":"s","t":0,"m":["a"],"q":["voltage"],"r":[[0,1,0,1.0,0]]}', "not listed"),
    (b'{"v":1,"g":"g","s":"s","t":0,"m":["a"],"q":["voltage"],"r":[[0,0,0,"x",0]]}', "not a number"),
])
def test_codec_rejects_bad_payloads_with_a_reason(payload: bytes, reason: str):
    with pytest.raises(uplink.UplinkError, match=reason):
        uplink.decode(payload)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


def uplink_gateway(tmp_path: Path, url: str, tag: str) -> Gateway:
    # the MQTT device only makes the config valid; the test feeds the buffer directly
    cfg = parse_config(f"""
gateway: {{id: gw-{tag}, site: plant-{tag}}}
buffer: {{path: {tmp_path / 'gw-buffer.db'}}}
sinks: [{{type: mqtt, url: "{url}", batch: 40, ack_timeout: 2s}}]
devices:
  - {{id: idle, protocol: mqtt, topic: idle/{tag}, points: [{{quantity: voltage, path: $.v}}]}}
""")
    return Gateway(cfg, None, url, "5")


def db_rows(db: str) -> list[tuple]:
    with psycopg.connect(libpq_url(db)) as conn:
        return conn.execute("SELECT time, meter_id, quantity, value, quality FROM readings"
                            " ORDER BY time, meter_id").fetchall()


def wait_for_rows(db: str, n: int, timeout: float) -> list[tuple]:
    deadline = time.monotonic() + timeout
    rows = db_rows(db)
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = db_rows(db)
    return rows


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def expected_rows(readings: list[Reading]) -> list[tuple]:
    return sorted((r.time, r.meter_id, r.quantity, r.value, int(r.quality)) for r in readings)


def test_uplink_to_ingest_to_postgres_exactly_once(db: str, broker: Mosquitto, tmp_path: Path):
    tag = uuid.uuid4().hex[:6]
    worker = IngestWorker(broker.url, "5", f"ingest-{tag}", tmp_path / "dead.db",
                          PostgresSink(db, refresh_rollups=False))
    worker.start()
    assert worker.subscribed.wait(10)
    gateway = uplink_gateway(tmp_path, broker.url, tag)
    readings = make_readings(500)
    gateway.buffer.append(readings)
    gateway.start()
    try:
        rows = wait_for_rows(db, len(readings), 30)
        assert rows == expected_rows(readings)
        assert wait_until(lambda: gateway.buffer.pending() == 0, 10)  # acknowledged once committed
        assert worker.malformed == 0
    finally:
        gateway.stop()
        worker.stop()
    assert len(db_rows(db)) == len(readings)


def test_broker_stopped_and_restarted_during_uplink_loses_nothing(db: str, broker: Mosquitto,
                                                                    tmp_path: Path):
    tag = uuid.uuid4().hex[:6]
    worker = IngestWorker(broker.url, "5", f"ingest-{tag}", tmp_path / "dead.db",
                          PostgresSink(db, refresh_rollups=False))
    worker.start()
    assert worker.subscribed.wait(10)
    gateway = uplink_gateway(tmp_path, broker.url, tag)
    gateway.start()
    readings = make_readings(1200)
    fed = threading.Event()

    def feed() -> None:  # the collectors keep producing whatever the broker does
        for i in range(0, len(readings), 20):
            gateway.buffer.append(readings[i:i + 20])
            time.sleep(0.02)
        fed.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        time.sleep(0.4)
        broker.stop()
        outage_pending = gateway.buffer.pending()
        time.sleep(2.5)
        assert gateway.buffer.pending() > outage_pending  # the outage piles up on disk
        broker.start()
        assert fed.wait(30)
        rows = wait_for_rows(db, len(readings), 60)
        assert rows == expected_rows(readings), (worker.received, gateway.sink.published, broker.log())
    finally:
        feeder.join(30)
        gateway.stop()
        worker.stop()


def test_malformed_uplink_goes_to_dead_letters_and_ingest_continues(db: str, broker: Mosquitto,
                                                                     tmp_path: Path):
    import paho.mqtt.client as mqtt

    from lingtan.kernel.mqtt import make_client

    worker = IngestWorker(broker.url, "5", "ingest-dl", tmp_path / "dead.db",
                          PostgresSink(db, refresh_rollups=False))
    worker.start()
    assert worker.subscribed.wait(10)
    pub, address = make_client(broker.url, "5")
    pub.connect(address.host, address.port)
    pub.loop_start()
    try:
        topic = "lingtan/v1/plant/gw/readings"
        pub.publish(topic, b'{"v": 99}', qos=1).wait_for_publish(5)
        good = make_readings(10)
        pub.publish(topic, uplink.encode("gw", "plant", good), qos=1).wait_for_publish(5)
        assert wait_for_rows(db, 10, 20) == expected_rows(good)
        letters = worker.dead_letters.recent()
        assert [(d.topic, d.payload) for d in letters] == [(topic, b'{"v": 99}')]
        assert "unsupported payload version 99" in letters[0].reason
    finally:
        pub.loop_stop()
        pub.disconnect()
        worker.stop()
    assert isinstance(pub, mqtt.Client)


def test_lost_acknowledgements_keep_the_batch_in_the_buffer_until_one_arrives(
        db: str, tmp_path: Path):
    """The broker refuses the ingest worker's acknowledgements (an ACL), so every one is lost:
    the readings are committed once, yet the gateway keeps them on disk and sends them again.
    When acknowledgements get through, the buffer empties and the database is unchanged."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite lingtan/v1/#\ntopic read lingtan/ack/#\n")
    broker = Mosquitto(tmp_path / "mosquitto", [f"acl_file {acl}"])
    broker.start()
    tag = uuid.uuid4().hex[:6]
    worker = IngestWorker(broker.url, "5", f"ingest-{tag}", tmp_path / "dead.db",
                          PostgresSink(db, refresh_rollups=False))
    worker.start()
    gateway = uplink_gateway(tmp_path, broker.url, tag)
    readings = make_readings(30)  # one batch
    gateway.buffer.append(readings)
    try:
        assert worker.subscribed.wait(10)
        gateway.start()
        assert wait_until(lambda: gateway.sink.resent >= 2, 20), broker.log()
        assert db_rows(db) == expected_rows(readings)  # committed, once, however often sent
        assert gateway.buffer.pending() == len(readings)  # but never confirmed: still on disk
        acl.write_text("topic readwrite lingtan/v1/#\ntopic readwrite lingtan/ack/#\n")
        broker.reload()
        assert wait_until(lambda: gateway.buffer.pending() == 0, 20)
        assert db_rows(db) == expected_rows(readings)
    finally:
        gateway.stop()
        worker.stop()
        broker.stop()


def test_a_batch_id_is_its_content_so_every_copy_shares_one_acknowledgement():
    readings = make_readings(20)
    batch_id, payload = uplink.encode_batch("gw-1", "plant", readings)
    again_id, again = uplink.encode_batch("gw-1", "plant", list(readings))
    assert (again_id, again) == (batch_id, payload)  # a resent copy is the same batch
    assert uplink.encode_batch("gw-1", "plant", make_readings(20, start=1))[0] != batch_id
    decoded = uplink.decode(payload)
    assert (decoded.id, decoded.readings) == (batch_id, readings)
    assert uplink.decode(uplink.encode("gw-1", "plant", readings)).id is None  # asks for no ack
    assert uplink.decode_ack(uplink.encode_ack(batch_id)) == batch_id
    assert uplink.ack_topic("plant", "gw-1") == "lingtan/ack/v1/plant/gw-1"
    assert not mqtt_topic_matches(uplink.ack_topic("plant", "gw-1"))  # workers never read acks


def mqtt_topic_matches(topic: str) -> bool:
    import paho.mqtt.client as mqtt

    from gateway.ingest import UPLINK_FILTER

    return mqtt.topic_matches_sub(UPLINK_FILTER, topic)


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"b": 5, "v":1,"g":"g","s":"s","t":0,"m":[],"q":[],"r":[]}', "`b` \\(batch id\\)"),
    (b"ack", "acknowledgement is not JSON"),
    (b'{"v": 1, "b": 7}', "not an acknowledgement"),
])
def test_bad_batch_ids_and_acknowledgements_say_what_is_wrong(payload: bytes, reason: str):
    with pytest.raises(uplink.UplinkError, match=reason):
        (uplink.decode if b'"g"' in payload else uplink.decode_ack)(payload)
