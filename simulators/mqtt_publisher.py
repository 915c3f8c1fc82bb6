"""The plant's JSON telemetry over MQTT (paho-mqtt 2.x): the production line and the
workshops' and offices' sub-meters, one topic each under ``<prefix>/<device>/telemetry``."""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from lingtan.kernel.mqtt import make_client, parse_mqtt_url
from simulators.site import LINE, MQTT_SUBMETERS, SITE_ID, SiteModel

log = logging.getLogger(__name__)


def topic_for(device: str, prefix: str = SITE_ID) -> str:
    return f"{prefix}/{device}/telemetry"


LINE_TOPIC = topic_for(LINE)
PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
# An hour of messages (every device every 5 s) rides out a broker restart; beyond that paho
# refuses new messages rather than growing without bound.
MAX_QUEUED = 720 * (1 + len(MQTT_SUBMETERS))


def line_telemetry(model: SiteModel) -> dict[str, Any]:
    """The payload a line PLC would send: simulated time, cumulative count, rate, state."""
    line = model.line
    return {
        "ts": model.now.isoformat(),
        "count": int(line.count),
        "rate_per_min": round(line.rate_per_min, 2),
        "state": "running" if line.running else "stopped",
        "power_kw": round(line.power_kw, 2),
    }


def meter_telemetry(model: SiteModel, readings: dict[str, tuple[float, float]], meter: str) -> dict[str, Any]:
    """What a sub-meter's IoT module sends: simulated time, power, the import counter (to the Wh)."""
    kw, kwh = readings[meter]
    return {"ts": model.now.isoformat(), "power_kw": round(kw, 3), "energy_kwh": round(kwh, 3)}


def messages(model: SiteModel, prefix: str = SITE_ID) -> list[tuple[str, dict[str, Any]]]:
    """(topic, payload) of every device on MQTT, the line first."""
    readings = model.submeters()
    return [(topic_for(LINE, prefix), line_telemetry(model)),
            *((topic_for(m, prefix), meter_telemetry(model, readings, m)) for m in MQTT_SUBMETERS)]


@dataclass
class PlantPublisher:
    client: mqtt.Client
    url: str
    prefix: str
    failing: bool = field(default=False)

    @property
    def topic(self) -> str:
        return topic_for(LINE, self.prefix)

    def publish(self, model: SiteModel) -> bool:
        """Queue one message per device (QoS 1); never raises. True if paho accepted them all."""
        ok = True
        for topic, payload in messages(model, self.prefix):
            ok = self._publish(topic, json.dumps(payload)) and ok
        return ok

    def _publish(self, topic: str, payload: str) -> bool:
        try:
            rc = self.client.publish(topic, payload, qos=1).rc
        except Exception as exc:  # a publisher error must never stop the simulator
            rc = MQTTErrorCode.MQTT_ERR_UNKNOWN
            detail = repr(exc)
        else:
            detail = mqtt.error_string(rc)
        # paho keeps QoS 1 messages queued while disconnected (rc NO_CONN) and sends
        # them after reconnecting, so only a refusal to queue is a lost message.
        ok = rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
        if not ok and not self.failing:
            log.warning("MQTT publish failed", extra={"topic": topic, "broker": _redact(self.url),
                                                      "error": detail})
        elif ok and self.failing:
            log.info("MQTT publish recovered", extra={"topic": topic})
        self.failing = not ok
        return ok

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _redact(url: str) -> str:
    a = parse_mqtt_url(url)
    return f"mqtt://{a.host}:{a.port}"


def _on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                properties: Any) -> None:
    # Keep callbacks trivial: an exception here would kill paho's network thread.
    if reason.is_failure:
        log.warning("MQTT connect refused", extra={"broker": userdata, "reason": str(reason)})
    else:
        log.info("MQTT connected", extra={"broker": userdata})


def _on_disconnect(client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                   properties: Any) -> None:
    if reason.is_failure:
        log.warning("MQTT connection lost or failed, retrying",
                    extra={"broker": userdata, "reason": str(reason)})


def start_plant_publisher(url: str, protocol: str, *, prefix: str = SITE_ID,
                          client_id: str | None = None) -> PlantPublisher:
    """Connect in the background (retrying forever) and return a publisher of every MQTT device,
    on topics under ``prefix``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"MQTT protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    # Unique per process, so two simulators on one broker do not kick each other off.
    cid = client_id or f"lingtan-sim-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    client, addr = make_client(url, protocol, cid)
    client.user_data_set(_redact(url))
    client.on_connect = _on_connect
    client.on_disconnect = _on_disconnect
    client.max_queued_messages_set(MAX_QUEUED)
    # Short, so that stopping never waits long on a connect to an unreachable broker.
    client.connect_timeout = 2.0
    client.connect_async(addr.host, addr.port, keepalive=30)
    client.loop_start()
    return PlantPublisher(client=client, url=url, prefix=prefix)
