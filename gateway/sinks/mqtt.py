"""MQTT uplink sink: publish buffered readings to the central broker at QoS 1.

``write`` returns only after the broker's PUBACK for the batch, and the drain loop acks the
buffer only after ``write`` returns, so a broker outage leaves the readings on disk. A batch
that timed out is not published a second time while the connection lasts: the next ``write``
of the same batch waits for that copy instead, so a slow broker does not pile up copies.

Mosquitto 2.0 does not persist shared ($share) subscriptions across its own restart: until an
ingest worker resubscribes, uplink messages would be dropped. So after every *re*connect the
sink waits ``reconnect_grace`` seconds before publishing, and the workers reconnect quickly
(≤ 2 s backoff), which closes that window in practice.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway import uplink
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.reading import Reading

log = logging.getLogger(__name__)

_BatchKey = tuple[int, object, object]


class SinkUnavailable(ConnectionError):
    pass


class MqttSink:
    def __init__(self, url: str, protocol: str, client_id: str, topic: str, gateway: str, site: str,
                 *, ca_file: Path | None = None, cert_file: Path | None = None,
                 key_file: Path | None = None, timeout: float = 10.0,
                 reconnect_grace: float = 5.0) -> None:
        self.topic = topic.format(site=site, gateway=gateway)
        self.gateway = gateway
        self.site = site
        self.timeout = timeout
        self.published = 0
        self.connected = threading.Event()
        self._closing = False
        self.reconnect_grace = reconnect_grace
        self._connects = 0
        self._publish_after = 0.0  # monotonic time before which a reconnected sink holds back
        self._inflight: tuple[_BatchKey, mqtt.MQTTMessageInfo] | None = None
        self.client, self.address = make_client(url, protocol, client_id, ca_file=ca_file,
                                                cert_file=cert_file, key_file=key_file)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object = None) -> None:
        if reason.is_failure:
            log.warning("uplink connect refused", extra={"reason": str(reason)})
            return
        self._connects += 1
        if self._connects > 1:
            self._publish_after = time.monotonic() + self.reconnect_grace
            # paho would resend unacked batches right now, inside the grace window; the buffer
            # still holds them, so drop paho's copies and let write() republish after the grace
            dropped = client.drop_out_messages()
            self._inflight = None
            if dropped:
                log.info("uplink will republish unacked batches", extra={"batches": len(dropped)})
        self.connected.set()
        log.info("uplink connected", extra={"broker": f"{self.address.host}:{self.address.port}",
                                            "topic": self.topic})

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object = None) -> None:
        self.connected.clear()
        if not self._closing:
            log.warning("uplink disconnected; reconnecting", extra={"reason": str(reason)})

    def write(self, readings: list[Reading]) -> int:
        """Publish ``readings`` as one batch; returns how many the broker acknowledged."""
        if not readings:
            return 0
        key: _BatchKey = (len(readings), readings[0], readings[-1])
        if self._inflight is not None and self._inflight[0] == key:
            info = self._inflight[1]  # still in flight on this connection: keep waiting
        else:
            if not self.connected.wait(self.timeout):
                raise SinkUnavailable(f"uplink broker {self.address.host}:{self.address.port} "
                                      "is not connected")
            hold = self._publish_after - time.monotonic()
            if hold > 0:  # give ingest workers time to resubscribe after a broker restart
                time.sleep(hold)
            info = self.client.publish(self.topic, uplink.encode(self.gateway, self.site, readings),
                                       qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # NO_CONN: lost between the check and the publish; retried from the buffer
                raise SinkUnavailable(f"uplink publish failed: {mqtt.error_string(info.rc)}")
            self._inflight = (key, info)
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise SinkUnavailable(f"no PUBACK from the uplink broker within {self.timeout:g} s")
        self._inflight = None
        self.published += len(readings)
        return len(readings)

    def write_rows(self, rows: list[tuple]) -> int:  # type: ignore[type-arg]
        """The drain path: (time, meter, quantity, value, quality) rows, as one batch."""
        return self.write([Reading(*row) for row in rows])

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
