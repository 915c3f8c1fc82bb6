"""Central ingest worker: MQTT uplink (shared subscription) → durable buffer → PostgreSQL.

Delivery guarantee: a QoS 1 message is acknowledged to the broker only after its readings are
committed to this worker's disk buffer (paho sends the PUBACK when ``on_message`` returns, and
the buffer append happens synchronously inside it). A worker killed at any moment therefore
loses nothing: unacked messages stay in its persistent broker session (fixed client id) and are
redelivered when it comes back with the same id; readings already buffered but not yet written
are drained from the same buffer file on restart. Redelivery can repeat a reading, which the
idempotent PostgreSQL insert absorbs, so the database holds each reading exactly once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway import uplink
from gateway.buffer import DiskBuffer
from gateway.deadletter import DeadLetterStore, sibling_path
from gateway.drain import Drainer
from gateway.runtime import Sink
from gateway.sinks.postgres import PostgresSink
from lingtan.core.rollup_worker import RollupWorker
from lingtan.kernel.mqtt import connect_kwargs, make_client

log = logging.getLogger(__name__)

SHARE_GROUP = "lingtan-ingest"
UPLINK_FILTER = "lingtan/v1/#"


def default_client_id() -> str:
    return f"lingtan-ingest-{socket.gethostname()}-{os.getpid()}"


class IngestWorker:
    def __init__(self, mqtt_url: str, protocol: str, client_id: str, buffer_path: Path,
                 sink: Sink, *, batch: int = 20_000, topic_filter: str = UPLINK_FILTER,
                 group: str = SHARE_GROUP, max_buffer_bytes: int = 2 * 10**9) -> None:
        if protocol != "5":
            # $share needs MQTT 5 on Mosquitto, and the session expiry property is MQTT 5 only
            raise ValueError("lingtan ingest needs an MQTT 5 broker (LINGTAN_MQTT_PROTOCOL=5)")
        self.client_id = client_id
        self.subscription = f"$share/{group}/{topic_filter}"
        self.buffer = DiskBuffer(buffer_path, max_buffer_bytes)
        self.dead_letters = DeadLetterStore(sibling_path(buffer_path))
        self.sink = sink
        self.drainer = Drainer(self.buffer, sink.write_rows, batch=batch)
        # central, next to the database: refresh the rollups it marks, readings first
        self.rollups = (RollupWorker(sink.url, defer=self.drainer.backlog)
                        if isinstance(sink, PostgresSink) else None)
        self.received = 0  # messages
        self.buffered = 0  # readings
        self.malformed = 0
        self.subscribed = threading.Event()
        self._closing = False
        self.client, self.address = make_client(mqtt_url, protocol, client_id, persistent=True)
        self.protocol = protocol
        # back quickly after a broker restart: Mosquitto forgets $share subscriptions until we renew
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        # on_message, not message_callback_add: a "$share/..." callback filter never matches
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.drainer.start()
        if self.rollups is not None:
            self.rollups.start()
        self.client.connect_async(self.address.host, self.address.port, keepalive=30,
                                  **connect_kwargs(self.protocol, True))
        self.client.loop_start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
        # what is buffered but not written by then stays on disk for the next start with this id
        self.drainer.stop(drain_seconds)
        if self.rollups is not None:
            self.rollups.stop()
        self.sink.close()
        self.buffer.close()
        self.dead_letters.close()

    @property
    def written(self) -> int:
        """Readings new to the database."""
        return self.drainer.written

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object = None) -> None:
        if reason.is_failure:
            log.warning("ingest connect refused", extra={"reason": str(reason)})
            return
        client.subscribe(self.subscription, qos=1)
        log.info("ingest connected", extra={
            "client_id": self.client_id, "subscription": self.subscription,
            "session_present": bool(getattr(flags, "session_present", False))})

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: mqtt.ReasonCode, properties: object = None) -> None:
        self.subscribed.clear()
        if not self._closing:
            log.warning("ingest disconnected; reconnecting", extra={"reason": str(reason)})

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      reason_codes: list[mqtt.ReasonCode], properties: object = None) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("ingest subscription refused", extra={
                "subscription": self.subscription, "reasons": [str(rc) for rc in reason_codes]})
            return
        self.subscribed.set()
        log.info("ingest subscribed", extra={"client_id": self.client_id,
                                             "subscription": self.subscription})

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Runs on paho's loop thread: an escaping exception would kill it, so catch everything.
        arrived = datetime.now(UTC)
        self.received += 1
        try:
            batch = uplink.decode(msg.payload)
            self.buffer.append(batch.readings)
            self.buffered += len(batch.readings)
            log.debug("uplink batch buffered", extra={"topic": msg.topic, "gateway": batch.gateway,
                                                      "readings": len(batch.readings)})
        except uplink.UplinkError as exc:
            self._reject(msg, arrived, str(exc))
        except Exception as exc:
            # the buffer could not take it: keep the raw batch rather than ack it into nothing
            log.exception("cannot buffer uplink batch", extra={"topic": msg.topic})
            self._reject(msg, arrived, f"{type(exc).__name__}: {exc}")

    def _reject(self, msg: mqtt.MQTTMessage, arrived: datetime, reason: str) -> None:
        self.malformed += 1
        log.warning("malformed uplink payload", extra={"topic": msg.topic, "reason": reason,
                                                       "bytes": len(msg.payload)})
        try:
            self.dead_letters.add(msg.topic, reason, msg.payload, arrived)
        except Exception:
            log.exception("cannot store dead letter", extra={"topic": msg.topic})


def run_ingest(mqtt_url: str, protocol: str, database_url: str, client_id: str, buffer_path: Path,
               stopping: threading.Event, batch: int = 5000) -> None:
    worker = IngestWorker(mqtt_url, protocol, client_id, buffer_path, PostgresSink(database_url),
                          batch=batch)
    log.info("ingest starting", extra={"client_id": client_id, "buffer": str(buffer_path),
                                       "pending": worker.buffer.pending()})
    worker.start()
    stopping.wait()
    log.info("ingest stopping", extra={"pending": worker.buffer.pending(),
                                       "received": worker.received, "written": worker.written})
    worker.stop()
