"""MQTT collector: JSON telemetry on topics → Readings via per-device JSON paths."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from gateway.config import Device
from gateway.decode import to_canonical
from gateway.jsonpath import compile_path, extract
from lingtan.mqtt import make_client
from lingtan.reading import Reading

log = logging.getLogger(__name__)

Emit = Callable[[list[Reading]], None]


class PayloadError(ValueError):
    pass


@dataclass
class Mapping:
    device: Device
    steps: list[tuple[object, list[str | int]]]  # (point, compiled path)
    time_steps: list[str | int] | None


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


def decode_payload(mapping: Mapping, payload: bytes, arrived: datetime) -> list[Reading]:
    device = mapping.device
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"{device.id}: payload is not JSON: {exc}") from None
    at = arrived
    if mapping.time_steps is not None:
        try:
            at = parse_timestamp(extract(document, mapping.time_steps))
        except (KeyError, ValueError) as exc:
            raise PayloadError(f"{device.id}: timestamp {device.timestamp}: {exc}") from None
    readings = []
    for point, steps in mapping.steps:
        try:
            raw = extract(document, steps)
        except KeyError:
            continue  # a field a message does not carry is simply not reported this time
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise PayloadError(
                f"{device.id} point {point.quantity} ({point.path}): {raw!r} is not a number"
            )
        readings.append(Reading(at, device.id, point.quantity, to_canonical(point, raw)))
    return readings


class MqttCollector:
    def __init__(self, devices: list[Device], url: str, protocol: str, client_id: str,
                 emit: Emit) -> None:
        self.mappings = {d.topic: compile_mapping(d) for d in devices if d.topic}
        self.emit = emit
        self.malformed = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged every subscription
        self._pending_subs: set[int] = set()
        self.client, self.address = make_client(url, protocol, client_id)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object = None) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused", extra={"reason": str(reason)})
            return
        self.subscribed.clear()
        self._pending_subs = {client.subscribe(topic, qos=1)[1] for topic in self.mappings}
        self.connected.set()
        log.info("mqtt connected", extra={"broker": f"{self.address.host}:{self.address.port}",
                                          "topics": list(self.mappings)})

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[mqtt.ReasonCode], properties: object = None) -> None:
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # An exception escaping a paho callback kills its loop thread: catch everything here.
        try:
            mapping = self.mappings.get(msg.topic) or self._match(msg.topic)
            if mapping is None:
                return
            readings = decode_payload(mapping, msg.payload, datetime.now(UTC))
            self.emit(readings)
        except PayloadError as exc:
            self.malformed += 1
            log.warning("malformed payload", extra={"topic": msg.topic, "error": str(exc)})
        except Exception:
            self.malformed += 1
            log.exception("cannot handle message", extra={"topic": msg.topic})

    def _match(self, topic: str) -> Mapping | None:
        for topic_filter, mapping in self.mappings.items():
            if mqtt.topic_matches_sub(topic_filter, topic):
                return mapping
        return None
