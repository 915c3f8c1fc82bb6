"""Broker loss: what Mosquitto dropped reaches /metrics, `lingtan gateway status`, the heartbeat and
the log, and a broker restart never makes the count go backwards. A private Mosquitto with a
queue of 10 and $SYS every second: an offline persistent session overflows it on demand."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.brokerstats import DropCounter, Increase, watch_brokers
from gateway.config import parse_config
from gateway.health import HealthRegistry
from gateway.metrics import HealthCollector, parse_brokers, parse_metrics, status_text
from gateway.runtime import Gateway
from lingtan.kernel.db import libpq_url
from lingtan.kernel.mqtt import connect_kwargs, make_client
from tests.conftest import free_port
from tests.gateway.mosquitto import Mosquitto
from tests.gateway.test_health import lingtan, scrape, wait_for

QUEUE = 10  # max_queued_messages of the private broker


# --- the arithmetic --------------------------------------------------------------------------


def test_counter_counts_increases_across_restarts_and_never_goes_back():
    c = DropCounter()
    c.uptime(100, mono=1000)
    assert c.dropped(30, retained=True, wall=1.0) is None  # before we watched: a baseline
    assert (c.total, c.value) == (0, 30)
    assert c.dropped(35, retained=False, wall=2.0) == Increase(5, True)
    assert c.dropped(35, retained=True, wall=3.0) == Increase(0, True)  # resubscribed: no new drops
    assert (c.total, c.last_increase) == (5, 2.0)

    c.uptime(110, mono=1010)
    assert not c.restarts
    assert c.uptime(3, mono=1100)  # uptime went back: a restart, its counter starts at 0
    assert (c.restarts, c.value) == (1, 0)
    assert c.dropped(40, retained=True, wall=4.0) == Increase(40, True)  # above the old 35, all new
    assert c.total == 45

    assert c.dropped(2, retained=False, wall=5.0) == Increase(2, True)  # fell: started over unseen
    assert (c.total, c.restarts) == (47, 2)

    # gone longer than the broker had been up: the uptime grew, but the start it implies moved
    c.uptime(20, mono=1200)
    assert c.uptime(30, mono=1500) and c.value == 0


def test_a_counter_never_seen_before_counts_a_live_change_as_at_least_one():
    c = DropCounter()
    assert c.dropped(0, retained=False, wall=1.0) is None
    c = DropCounter()  # the retained copy had expired (60 s): 500 arrives live, from an unknown value
    assert c.dropped(500, retained=False, wall=1.0) == Increase(1, False)
    assert c.dropped(503, retained=False, wall=2.0) == Increase(3, True)
    assert c.total == 4


def test_which_brokers_a_gateway_watches(tmp_path: Path):
    def cfg(sinks: str, mqtt_device: bool) -> object:
        device = ("  - {id: m, protocol: mqtt, topic: t, points: [{quantity: voltage, path: $.v}]}"
                  if mqtt_device else
                  "  - {id: m, protocol: modbus-tcp, host: 10.0.0.1, profile: eastron-sdm630}")
        return parse_config(f"gateway: {{id: gw, site: s}}\nsinks: {sinks}\ndevices:\n{device}\n")

    assert watch_brokers(cfg("[{type: postgres}]", False), "mqtt://b:1883", "5") == []
    (only,) = watch_brokers(cfg("[{type: postgres}]", True), "mqtt://b:1883", "5")
    assert (only.broker, only.role) == ("b:1883", "collector")
    both = watch_brokers(cfg('[{type: mqtt, url: "mqtt://central:1883"}]', True), "mqtt://b:1883", "5")
    assert [(w.broker, w.role) for w in both] == [("b:1883", "collector"), ("central:1883", "uplink")]
    (shared,) = watch_brokers(cfg("[{type: mqtt}]", True), "mqtt://b:1883", "5")
    assert (shared.broker, shared.role) == ("b:1883", "collector+uplink")
    assert shared.client._client_id == b"lingtan-gw-gw-sys-collector-uplink"


# --- a gateway against a private broker that drops -------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto", extra=["sys_interval 1", f"max_queued_messages {QUEUE}"])
    b.start()
    yield b
    b.stop()


def overflow(url: str, n: int, topic: str = "slow/consumer", subscribe: bool = False) -> None:
    """Publish ``n`` QoS 1 messages for an offline persistent session, created first if asked."""
    if subscribe:
        sub, address = make_client(url, "5", "slow-consumer", persistent=True)
        sub.connect(address.host, address.port, **connect_kwargs("5", True))
        sub.loop_start()
        sub.subscribe(topic, 1)
        time.sleep(0.5)
        sub.disconnect()
        sub.loop_stop()
    pub, address = make_client(url, "5")
    pub.connect(address.host, address.port)
    pub.loop_start()
    try:
        for i in range(n):
            pub.publish(topic, str(i), qos=1).wait_for_publish(5)
    finally:
        pub.disconnect()
        pub.loop_stop()


@pytest.fixture
def gateway(db: str, broker: Mosquitto, tmp_path: Path) -> Iterator[Gateway]:
    cfg = parse_config(f"""
gateway: {{id: drop-gw, site: drop-site}}
buffer: {{path: {tmp_path / 'buffer.db'}}}
health: {{listen: "127.0.0.1:{free_port()}", heartbeat: 1s}}
devices:
  - {{id: line-1, protocol: mqtt, topic: plant/line-1, points: [{{quantity: voltage, path: $.v}}]}}
""")
    with psycopg.connect(libpq_url(db), autocommit=True) as conn:
        conn.execute("DELETE FROM gateway_heartbeats WHERE gateway_id = 'drop-gw'")
    gw = Gateway(cfg, db, broker.url, "5")
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def heartbeat_brokers(db: str) -> list[dict]:
    with psycopg.connect(libpq_url(db)) as conn:
        row = conn.execute("SELECT status FROM gateway_heartbeats WHERE gateway_id = 'drop-gw'").fetchone()
    return row[0].get("brokers", []) if row else []


def test_dropped_messages_reach_metrics_status_heartbeat_and_log(gateway: Gateway, broker: Mosquitto,
                                                                   db: str, tmp_path: Path, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.brokerstats")
    port = gateway.monitor.port
    assert port
    name = f"127.0.0.1:{broker.port}"

    def brokers() -> dict:
        return {b.broker: b for b in parse_brokers(scrape(port))}

    ready = wait_for(lambda: (b := brokers().get(name)) and b.state == "published" and b)
    assert ready, scrape(port)
    assert (ready.role, ready.dropped_since_start, ready.connected) == ("collector", 0, True)

    overflow(broker.url, QUEUE + 15, subscribe=True)
    line = f'lingtan_broker_dropped_messages_total{{broker="{name}"}} 15.0'
    assert wait_for(lambda: line in scrape(port), 15), scrape(port)
    text = scrape(port)
    assert f'lingtan_broker_reported_dropped_messages{{broker="{name}"}} 15.0' in text
    assert f'lingtan_broker_info{{broker="{name}",role="collector",sys="published"}} 1.0' in text
    assert "# HELP lingtan_broker_dropped_messages_total Messages the broker dropped" in text
    assert not any(s.startswith("lingtan_broker") for s in parse_metrics(text)[1])  # not gateway-wide

    warned = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "gateway.brokerstats"]
    assert warned, caplog.text
    record = warned[-1]
    assert (record.broker, record.dropped, record.dropped_since_start) == (name, 15, 15)  # type: ignore[attr-defined]
    assert "max_queued_messages" in record.getMessage() and "max_inflight_messages" in record.getMessage()
    assert "deploy/mosquitto/mosquitto.conf" in record.getMessage()

    live = status_text("drop-gw", gateway.cfg.health.listen)
    assert f"broker {name} (collector): dropped 15 since gateway start · broker counter 15" in live
    assert wait_for(lambda: [b["dropped_since_start"] for b in heartbeat_brokers(db)] == [15], 10)
    from_db = status_text("drop-gw", None, db)
    assert f"broker {name} (collector): dropped 15 since gateway start" in from_db
    config = tmp_path / "gw.yaml"  # the CLI reads the same row
    config.write_text("gateway: {id: drop-gw, site: drop-site}\nhealth: {listen: null}\ndevices:\n"
                      "  - {id: m, protocol: modbus-tcp, host: 10.0.0.1, profile: eastron-sdm630}\n")
    out = lingtan("gateway", "status", "--config", str(config), "--from-db",
                  env={**os.environ, "LINGTAN_DATABASE_URL": db})
    assert out.returncode == 0, out.stderr
    assert f"broker {name} (collector): dropped 15 since gateway start" in out.stdout

    # a broker restart: its counter starts over, the gateway's total does not go back
    seen: list[int | None] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rows = {b.broker: b.dropped_since_start for b in parse_brokers(scrape(port))}
            seen.append(rows.get(name))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        broker.stop()
        broker.start()
        assert wait_for(lambda: brokers()[name].connected and brokers()[name].broker_restarts == 1, 20), \
            scrape(port)
        overflow(broker.url, 5)  # the restored session's queue is still full
        after = wait_for(lambda: (b := brokers()[name]).dropped_since_start == 20 and b, 15)
        assert after, scrape(port)
        assert after.broker_dropped == 5  # the broker's own count, since it restarted
    finally:
        stop.set()
        sampler.join(5)
    assert seen and None not in seen, seen  # never absent while the broker was away
    assert seen == sorted(seen), seen  # type: ignore[type-var]
    assert wait_for(lambda: [b["dropped_since_start"] for b in heartbeat_brokers(db)] == [20], 10)
    assert "dropped 20 since gateway start · broker counter 5" in status_text("drop-gw", None, db)


def test_a_broker_without_sys_says_not_published(tmp_path: Path):
    from gateway.brokerstats import BrokerWatch

    quiet = Mosquitto(tmp_path / "quiet", extra=["sys_interval 0"])
    quiet.start()
    watch = BrokerWatch(quiet.url, "5", f"t-{uuid.uuid4().hex[:6]}", "uplink", not_published_after=1)
    watch.start()
    try:
        snap = wait_for(lambda: (s := watch.snapshot()).state == "not published" and s, 10)
        assert snap, watch.snapshot()
        assert snap.dropped_since_start is None and snap.broker_dropped is None and snap.connected
        health = HealthRegistry(gateway_id="gw", site_id="s")
        health.bind_brokers(lambda: [watch.snapshot()])
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HealthCollector(health))
        text = generate_latest(registry).decode()
        name = f"127.0.0.1:{quiet.port}"
        assert f'lingtan_broker_info{{broker="{name}",role="uplink",sys="not published"}} 1.0' in text
        assert f'lingtan_broker_dropped_messages_total{{broker="{name}"}}' not in text  # never a false 0
        (row,) = parse_brokers(text)
        assert row.state == "not published" and row.dropped_since_start is None
        from gateway.metrics import broker_line

        assert "not published" in broker_line(row, time.time())
        assert "dropped 0" not in broker_line(row, time.time())
    finally:
        watch.stop()
        quiet.stop()
