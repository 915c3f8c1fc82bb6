"""What the MQTT broker itself threw away: Mosquitto's dropped-message counter, read by the gateway.

Mosquitto drops a QoS 1/2 message for a client whose queue is full (``max_queued_messages``
beyond the ``max_inflight_messages`` in flight; an offline persistent session counts too). The
publisher got its PUBACK, so the gateway's buffer let the reading go: the loss is visible only in
the broker's counter ``$SYS/broker/publish/messages/dropped``. Mosquitto 2.0, as measured:

- the counter is broker-wide and cumulative since the broker started, and restarts from 0 with it;
- it is published only when it changed (and once at start), at most every ``sys_interval``, as
  a retained message that expires after 60 s: a subscriber arriving later gets nothing until it
  changes again, so "no message" is not "0";
- ``$SYS/broker/uptime`` comes every interval; going back, or the start it implies moving, is a
  restart; ``$SYS/broker/version`` (retained, once) says the broker is Mosquitto.

Each broker is read on a small connection of its own (clean session, QoS 0), so $SYS messages
never queue up for a gateway that is down and the collector's session stays as it is. Uptime
and version are subscribed before the counter: the retained uptime then arrives first, and a
restart is known before the new incarnation's counter is counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt

from lingtan.kernel import clock
from lingtan.kernel.mqtt import make_client, parse_mqtt_url

log = logging.getLogger(__name__)

UPTIME = "$SYS/broker/uptime"
VERSION = "$SYS/broker/version"
DROPPED = "$SYS/broker/publish/messages/dropped"
# A retained uptime is up to one sys_interval old; a start that moves further than this is a restart.
RESTART_SLACK_S = 60.0
# The retained uptime arrives with the subscription; a broker silent this long publishes no $SYS.
NOT_PUBLISHED_AFTER_S = 15.0
SETTINGS = "max_queued_messages, max_inflight_messages"
SEE = "deploy/mosquitto/mosquitto.conf"
FIX = (f"raise max_queued_messages (and max_inflight_messages) in the broker's mosquitto.conf, see {SEE};"
       " the broker's log names the client: 'Outgoing messages are being dropped for client …'")

PUBLISHED, NOT_PUBLISHED, WAITING = "published", "not published", "waiting"


class Increase(NamedTuple):
    n: int
    exact: bool  # False: the counter moved from a value never seen, so n is a lower bound


class DropCounter:
    """The arithmetic: increases of a counter that restarts with its broker, never negative."""

    def __init__(self) -> None:
        self.value: int | None = None  # the broker's counter as last known
        self.total = 0  # increases seen since this gateway started
        self.last_increase: float | None = None  # wall clock (epoch seconds)
        self.restarts = 0
        self._uptime: float | None = None
        self._started: float | None = None  # when the broker started, on the monotonic clock

    def uptime(self, seconds: float, mono: float) -> bool:
        """Takes a published uptime; True when it shows a broker restart."""
        started = mono - seconds
        restarted = self._uptime is not None and self._started is not None and (
            seconds < self._uptime or started > self._started + RESTART_SLACK_S)
        if restarted:
            self.restarts += 1
            self.value = 0  # the new incarnation counts from 0, published or not
        self._uptime, self._started = seconds, started
        return restarted

    def dropped(self, count: int, retained: bool, wall: float) -> Increase | None:
        """Takes a published counter; the increase it shows, or None for a first sight (a baseline:
        what the broker dropped before this gateway was watching)."""
        previous, self.value = self.value, count
        if previous is None:
            if retained or count == 0:
                return None
            # published live, so it changed since we subscribed; by how much is unknown
            increase = Increase(1, exact=False)
        elif count < previous:  # a restart the uptime did not show: the counter started over
            self.restarts += 1
            increase = Increase(count, exact=True)
        else:
            increase = Increase(count - previous, exact=True)
        if increase.n:
            self.total += increase.n
            self.last_increase = wall
        return increase


@dataclass
class BrokerHealth:
    broker: str  # host:port
    role: str  # "collector", "uplink" or "collector+uplink"
    state: str  # published | not published | waiting
    connected: bool
    dropped_since_start: int | None  # None unless the broker publishes its counter
    broker_dropped: int | None  # the broker's counter since it started, None until published
    last_drop: float | None  # epoch seconds of the last increase seen
    broker_restarts: int = 0


class BrokerWatch:
    """One broker's $SYS counter on a connection of its own; ``snapshot()`` is thread-safe."""

    def __init__(self, url: str, protocol: str, client_id: str, role: str, *,
                 ca_file: Path | None = None, cert_file: Path | None = None,
                 key_file: Path | None = None, not_published_after: float = NOT_PUBLISHED_AFTER_S,
                 mono: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = lambda: clock.now().timestamp()) -> None:
        self.role = role
        self.not_published_after = not_published_after
        self._mono = mono
        self._wall = wall
        self._lock = threading.Lock()
        self.counter = DropCounter()
        self._connected = False
        self._sys_seen = False
        self._mosquitto = False
        self._refused = False
        self._subscribed_at: float | None = None
        self._first_mid: int | None = None
        self._stopping = False
        self.client, self.address = make_client(url, protocol, client_id, ca_file=ca_file,
                                                cert_file=cert_file, key_file=key_file)
        self.broker = f"{self.address.host}:{self.address.port}"
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self) -> BrokerHealth:
        with self._lock:
            c = self.counter
            state = self._state()
            return BrokerHealth(
                broker=self.broker, role=self.role, state=state, connected=self._connected,
                dropped_since_start=c.total if state == PUBLISHED else None,
                broker_dropped=c.value, last_drop=c.last_increase, broker_restarts=c.restarts)

    def _state(self) -> str:
        # Mosquitto publishes the counter whenever it changes, so once it is known to be Mosquitto
        # a counter not heard of has not changed since we subscribed
        if self.counter.value is not None or (self._sys_seen and self._mosquitto):
            return PUBLISHED
        if self._refused or (self._subscribed_at is not None
                             and self._mono() - self._subscribed_at >= self.not_published_after):
            return NOT_PUBLISHED
        return WAITING

    # --- paho callbacks (its network thread); an exception escaping one would kill that thread ---

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object = None) -> None:
        if reason.is_failure:
            log.warning("broker stats connect refused", extra={"broker": self.broker,
                                                               "reason": str(reason)})
            return
        with self._lock:
            self._connected = True
            self._subscribed_at = None
        _, self._first_mid = client.subscribe([(UPTIME, 0), (VERSION, 0)])

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object = None) -> None:
        with self._lock:
            self._connected = False
        if not self._stopping:
            log.info("broker stats disconnected; reconnecting", extra={"broker": self.broker,
                                                                       "reason": str(reason)})

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[mqtt.ReasonCode], properties: object = None) -> None:
        refused = any(rc.is_failure for rc in reason_codes)
        if mid == self._first_mid:
            # the retained uptime is on its way already: the counter's comes after it
            client.subscribe(DROPPED, 0)
            with self._lock:
                self._refused = refused
            return
        with self._lock:
            self._refused = self._refused or refused
            self._subscribed_at = self._mono()
        if refused:
            log.warning("broker refused the $SYS subscription: its dropped messages cannot be seen",
                        extra={"broker": self.broker, "topic": DROPPED})

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            text = msg.payload.decode("utf-8", errors="replace").strip()
            if msg.topic == UPTIME:
                self._uptime(float(text.split()[0]))
            elif msg.topic == VERSION:
                with self._lock:
                    self._mosquitto = text.lower().startswith("mosquitto")
            elif msg.topic == DROPPED:
                self._dropped(int(text), bool(msg.retain))
        except (ValueError, IndexError) as exc:
            log.debug("unreadable $SYS message", extra={"topic": msg.topic, "error": str(exc)})
        except Exception:
            log.exception("cannot handle $SYS message", extra={"topic": msg.topic})

    def _uptime(self, seconds: float) -> None:
        with self._lock:
            self._sys_seen = True
            restarted = self.counter.uptime(seconds, self._mono())
        if restarted:
            log.info("broker restarted; its dropped-message counter starts over",
                     extra={"broker": self.broker, "uptime_s": seconds})

    def _dropped(self, count: int, retained: bool) -> None:
        with self._lock:
            self._sys_seen = True
            increase = self.counter.dropped(count, retained, self._wall())
            total = self.counter.total
        facts: dict[str, Any] = {"broker": self.broker, "role": self.role, "broker_dropped": count,
                                 "dropped_since_start": total, "settings": SETTINGS, "see": SEE}
        if increase is None:
            if count:
                log.warning(f"mqtt broker had dropped messages before this gateway watched it: {FIX}",
                            extra={**facts, "dropped": count})
        elif increase.n:
            # not exact: the counter moved from a value never seen, so this is a lower bound
            log.warning(f"mqtt broker dropped messages: {FIX}",
                        extra={**facts, "dropped": increase.n, "exact": increase.exact})


def watch_brokers(cfg: Any, mqtt_url: str | None, protocol: str) -> list[BrokerWatch]:
    """One watch per broker the gateway uses: the collector's (MQTT devices) and the uplink
    sink's; a gateway with only Modbus devices and a PostgreSQL sink has none."""
    found: dict[str, dict[str, Any]] = {}

    def add(url: str, role: str, **tls: Path | None) -> None:
        address = parse_mqtt_url(url)
        entry = found.setdefault(f"{address.host}:{address.port}", {"url": url, "roles": [], "tls": {}})
        entry["roles"].append(role)
        entry["tls"] = entry["tls"] or {k: v for k, v in tls.items() if v is not None}

    if mqtt_url and any(d.protocol == "mqtt" for d in cfg.devices):
        add(mqtt_url, "collector")
    sink = cfg.sinks[0] if cfg.sinks else None
    if sink is not None and sink.type == "mqtt" and (sink.url or mqtt_url):
        add(sink.url or mqtt_url, "uplink", ca_file=sink.ca_file, cert_file=sink.cert_file,
            key_file=sink.key_file)
    return [BrokerWatch(e["url"], protocol, f"lingtan-gw-{cfg.gateway.id}-sys-{'-'.join(e['roles'])}",
                        "+".join(e["roles"]), **e["tls"])
            for e in found.values()]
