"""MQTT collector: JSON telemetry on topics → Readings via per-device JSON paths.

Topic filters may use `+`/`#`; with `device_id_from_topic: N` one config entry serves every
device whose id is topic segment N. QoS 1 on a persistent session (fixed client id), so what
is published while the gateway is down arrives after it reconnects. Messages are stored in
batches and acknowledged only once their readings are in the disk buffer (``gateway.intake``):
a gateway killed mid-burst gets what it had not acknowledged again from its session. A payload
that cannot be decoded is counted, logged and kept with its raw bytes in the dead-letter store.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from gateway.config import Device
from gateway.deadletter import DeadLetterStore
from gateway.decode import to_canonical
from gateway.health import HealthRegistry
from gateway.intake import Intake, Message
from gateway.jsonpath import compile_path, extract
from lingtan.kernel.mqtt import connect_kwargs, make_client
from lingtan.kernel.reading import Reading

log = logging.getLogger(__name__)

Emit = Callable[[list[Reading]], None]


class PayloadError(ValueError):
    pass


# the same rule as a configured device id, so a topic cannot inject odd meter ids
_METER_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass
class Mapping:
    device: Device
    steps: list[tuple[object, list[str | int]]]  # (point, compiled path)
    time_steps: list[str | int] | None

    def meter_id(self, topic: str | None) -> str:
        index = self.device.device_id_from_topic
        if index is None:
            return self.device.id
        if topic is None:
            raise PayloadError(f"{self.device.id}: the device id comes from the topic, but there is none")
        parts = topic.split("/")
        if index >= len(parts) or not _METER_ID.match(parts[index]):
            raise PayloadError(
                f"{self.device.id}: topic {topic!r} segment {index} is not a usable device id"
            )
        return parts[index]


def compile_mapping(device: Device) -> Mapping:
    steps = [(p, compile_path(p.path or "")) for p in device.points]
    ts = compile_path(device.timestamp["path"]) if device.timestamp else None
    return Mapping(device, steps, ts)


def parse_timestamp(value: object) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000.0 if value > 1e11 else float(value)  # epoch ms or s
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if t.tzinfo is None:
            raise PayloadError(f"timestamp {value!r} has no time zone")
        return t.astimezone(UTC)
    raise PayloadError(f"timestamp {value!r} is neither ISO-8601 text nor epoch seconds")


def decode_payload(mapping: Mapping, payload: bytes, arrived: datetime,
                   topic: str | None = None) -> list[Reading]:
    device = mapping.device
    meter_id = mapping.meter_id(topic)
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"{meter_id}: payload is not JSON: {exc}") from None
    at = arrived
    if mapping.time_steps is not None:
        try:
            at = parse_timestamp(extract(document, mapping.time_steps))
        except (KeyError, ValueError, OverflowError, OSError) as exc:
            raise PayloadError(f"{meter_id}: timestamp {device.timestamp}: {exc}") from None
    readings = []
    for point, steps in mapping.steps:
        try:
            raw = extract(document, steps)
        except KeyError:
            continue  # a field a message does not carry is simply not reported this time
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise PayloadError(
                f"{meter_id} point {point.quantity} ({point.path}): {raw!r} is not a number"
            )
        readings.append(Reading(at, meter_id, point.quantity,
                                to_canonical(point, raw, params=device.params)))
    if not readings and mapping.steps:
        # almost always a wrong path or a different message format: worth a dead letter
        raise PayloadError(f"{meter_id}: payload carries none of the mapped paths "
                           f"{[p.path for p, _ in mapping.steps]}")
    return readings


class MqttCollector:
    def __init__(self, devices: list[Device], url: str, protocol: str, client_id: str,
                 emit: Emit, *, dead_letters: DeadLetterStore | None = None,
                 persistent: bool = True, health: HealthRegistry | None = None) -> None:
        # exact topics are looked up directly; wildcard filters are tried in config order
        self.mappings = {d.topic: compile_mapping(d) for d in devices if d.topic}
        self.emit = emit
        self.dead_letters = dead_letters
        self.health = health
        self.protocol = protocol
        self.persistent = persistent
        self.malformed = 0
        self.received = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged every subscription
        self._pending_subs: set[int] = set()
        self._stopping = False
        self.client, self.address = make_client(url, protocol, client_id, persistent=persistent,
                                                manual_ack=True)
        self.intake = Intake(self.client, self._store, name="mqtt")
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        self.intake.start()
        self.client.connect_async(self.address.host, self.address.port, keepalive=30,
                                  **connect_kwargs(self.protocol, self.persistent))
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        # what arrived is stored; unacknowledged, the broker also keeps it for the next start
        self.intake.stop()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object = None) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused", extra={"reason": str(reason)})
            return
        self.intake.connected()
        self.subscribed.clear()
        # Subscribing again on a resumed session is harmless and covers a session the broker lost.
        if self.mappings:
            result, mid = client.subscribe([(topic, 1) for topic in self.mappings])
            self._pending_subs = {mid} if result == mqtt.MQTT_ERR_SUCCESS else set()
        self.connected.set()
        log.info("mqtt connected", extra={
            "broker": f"{self.address.host}:{self.address.port}", "topics": list(self.mappings),
            "session_present": bool(getattr(flags, "session_present", False))})

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object = None) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping:
            log.warning("mqtt disconnected; reconnecting", extra={"reason": str(reason)})

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[mqtt.ReasonCode], properties: object = None) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("mqtt subscription refused", extra={"reasons": refused})
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self.subscribed.set()
            log.info("mqtt subscribed", extra={"topics": len(self.mappings)})

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        self.intake.offer(msg)

    def _store(self, batch: list[Message]) -> None:
        """The committer's work: decode a batch, store its readings in one append, then the
        rejects; the intake acknowledges the batch when this returns."""
        readings: list[Reading] = []
        good: list[tuple[str, int]] = []
        bad: list[tuple[Message, Mapping | None, str]] = []
        for msg in batch:
            mapping = None
            try:
                mapping = self.mappings.get(msg.topic) or self._match(msg.topic)
                if mapping is None:
                    continue
                decoded = decode_payload(mapping, msg.payload, msg.arrived, msg.topic)
                readings += decoded
                good.append((mapping.meter_id(msg.topic), len(decoded)))
            except PayloadError as exc:
                bad.append((msg, mapping, str(exc)))
            except Exception as exc:
                log.exception("cannot decode message", extra={"topic": msg.topic})
                bad.append((msg, mapping, f"{type(exc).__name__}: {exc}"))
        if readings:  # raises if the buffer cannot take them: nothing is acknowledged
            self.emit(readings)
        if self.health:  # per meter: one wildcard mapping may serve hundreds of them
            for meter_id, n in good:
                self.health.message_ok(meter_id, n)
        for msg, mapping, reason in bad:
            self._reject(msg, mapping, reason)

    def _reject(self, msg: Message, mapping: Mapping | None, reason: str) -> None:
        self.malformed += 1
        device = mapping.device.id if mapping else None
        if self.health:
            self.health.message_bad(device, reason)
        log.warning("malformed payload", extra={"topic": msg.topic, "device": device,
                                                "reason": reason, "bytes": len(msg.payload)})
        if self.dead_letters is not None:
            try:
                self.dead_letters.add(msg.topic, reason, msg.payload, msg.arrived)
            except Exception:
                log.exception("cannot store dead letter", extra={"topic": msg.topic})

    def _match(self, topic: str) -> Mapping | None:
        for topic_filter, mapping in self.mappings.items():
            if mqtt.topic_matches_sub(topic_filter, topic):
                return mapping
        return None


def probe(url: str, protocol: str, topic: str, devices: list[Device], out: Callable[[str], None],
          count: int | None = None, seconds: float | None = None, width: int = 200) -> int:
    """Commissioning: print messages on ``topic`` and what the device mappings make of them.

    Returns how many messages were seen. A clean, throw-away session: probing must not leave
    a queue behind on the broker.
    """
    mappings = [(d.topic, compile_mapping(d)) for d in devices if d.topic]
    seen = 0
    done = threading.Event()
    lock = threading.Lock()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: mqtt.ReasonCode,
                   properties: object = None) -> None:
        if reason.is_failure:
            out(f"connect refused: {reason}")
            done.set()
            return
        client.subscribe(topic, qos=1)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal seen
        try:
            with lock:
                if done.is_set():
                    return
                seen += 1
                text = msg.payload.decode("utf-8", errors="replace")
                if len(text) > width:
                    text = text[:width] + f"… ({len(msg.payload)} bytes)"
                out(f"{msg.topic}  {text}")
                for topic_filter, mapping in mappings:
                    if not mqtt.topic_matches_sub(topic_filter or "", msg.topic):
                        continue
                    try:
                        readings = decode_payload(mapping, msg.payload, datetime.now(UTC), msg.topic)
                        for r in readings:
                            out(f"  → {r.meter_id} {r.quantity} = {r.value:g} at {r.time.isoformat()}")
                    except PayloadError as exc:
                        out(f"  ✗ {mapping.device.id}: {exc}")
                if count is not None and seen >= count:
                    done.set()
        except Exception as exc:  # never kill the loop thread
            out(f"  ! {type(exc).__name__}: {exc}")

    client, address = make_client(url, protocol, "")
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        deadline = None if seconds is None else time.monotonic() + seconds
        while not done.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            done.wait(0.2 if left is None else min(0.2, left))
    finally:
        done.set()
        client.disconnect()
        client.loop_stop()
    return seen
