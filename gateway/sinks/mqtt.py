"""MQTT uplink sink: publish buffered readings to the central broker, end-to-end acknowledged.

``write`` publishes a batch at QoS 1 and returns only when an ingest worker has acknowledged
it on the gateway's ack topic — which a worker does only after the batch is committed in
PostgreSQL (``gateway.uplink``). The drain loop acks the disk buffer only after ``write``
returns, so until then the readings stay on disk.

What this guarantees by protocol, whatever the timing: a broker that restarts and forgets the
workers' shared subscriptions, a worker killed mid-batch, or a lost acknowledgement leaves the
batch unacknowledged, so ``write`` fails after ``ack_timeout`` and the drain loop sends the same
batch again. A copy committed twice lands once (the database's key; the batch id is a hash of
the batch, so an acknowledgement of any copy is an acknowledgement of all). The timeout only
decides how soon a batch is sent again, never whether a reading is kept.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway import uplink
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.reading import Reading

log = logging.getLogger(__name__)

_REMEMBERED_ACKS = 1024  # late acknowledgements of batches not yet re-sent stay useful


class SinkUnavailable(ConnectionError):
    pass


class MqttSink:
    def __init__(self, url: str, protocol: str, client_id: str, topic: str, gateway: str, site: str,
                 *, ca_file: Path | None = None, cert_file: Path | None = None,
                 key_file: Path | None = None, timeout: float = 10.0,
                 ack_timeout: float = 30.0) -> None:
        self.topic = topic.format(site=site, gateway=gateway)
        self.ack_topic = uplink.ack_topic(site, gateway)
        self.gateway = gateway
        self.site = site
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self.published = 0  # readings acknowledged as committed
        self.resent = 0  # batches sent again for want of an acknowledgement
        self.connected = threading.Event()
        self.listening = threading.Event()  # subscribed to the ack topic on this connection
        self._closing = False
        self._acks: OrderedDict[str, None] = OrderedDict()
        self._sent: set[str] = set()
        self._cond = threading.Condition()
        self.client, self.address = make_client(url, protocol, client_id, ca_file=ca_file,
                                                cert_file=cert_file, key_file=key_file)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_ack
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object = None) -> None:
        if reason.is_failure:
            log.warning("uplink connect refused", extra={"reason": str(reason)})
            return
        self.listening.clear()
        client.subscribe(self.ack_topic, qos=1)
        self.connected.set()
        log.info("uplink connected", extra={"broker": f"{self.address.host}:{self.address.port}",
                                            "topic": self.topic, "ack_topic": self.ack_topic})

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[mqtt.ReasonCode], properties: object = None) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("uplink cannot subscribe to its acknowledgements", extra={
                "ack_topic": self.ack_topic, "reasons": [str(rc) for rc in reason_codes]})
            return
        self.listening.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object = None) -> None:
        self.connected.clear()
        self.listening.clear()
        if not self._closing:
            log.warning("uplink disconnected; reconnecting", extra={"reason": str(reason)})

    def _on_ack(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            batch_id = uplink.decode_ack(msg.payload)
        except uplink.UplinkError as exc:
            log.warning("unreadable acknowledgement", extra={"topic": msg.topic, "reason": str(exc)})
            return
        with self._cond:
            self._acks[batch_id] = None
            while len(self._acks) > _REMEMBERED_ACKS:
                self._acks.popitem(last=False)
            self._cond.notify_all()

    def write(self, readings: list[Reading]) -> int:
        """Send ``readings`` as one batch; returns how many an ingest worker committed."""
        if not readings:
            return 0
        batch_id, payload = uplink.encode_batch(self.gateway, self.site, readings)
        with self._cond:
            if batch_id in self._acks:  # an earlier copy's acknowledgement came in late
                return self._done(batch_id, len(readings))
        # listening first: an acknowledgement sent before we subscribe would be missed
        if not self.listening.wait(self.timeout):
            raise SinkUnavailable(f"uplink broker {self.address.host}:{self.address.port} "
                                  "is not connected")
        info = self.client.publish(self.topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # NO_CONN: lost between the check and the publish; sent again from the buffer
            raise SinkUnavailable(f"uplink publish failed: {mqtt.error_string(info.rc)}")
        if batch_id in self._sent:
            self.resent += 1
            log.info("uplink batch sent again", extra={"batch": batch_id, "readings": len(readings)})
        self._sent.add(batch_id)
        with self._cond:
            if not self._cond.wait_for(lambda: batch_id in self._acks, self.ack_timeout):
                raise SinkUnavailable(
                    f"no ingest worker acknowledged batch {batch_id} within {self.ack_timeout:g} s;"
                    " it stays in the buffer and is sent again")
            return self._done(batch_id, len(readings))

    def _done(self, batch_id: str, n: int) -> int:
        self._sent.discard(batch_id)
        self.published += n
        return n

    def write_rows(self, rows: list[tuple]) -> int:  # type: ignore[type-arg]
        """The drain path: (time, meter, quantity, value, quality) rows, as one batch."""
        return self.write([Reading(*row) for row in rows])

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
