"""Central ingest worker: MQTT uplink (shared subscription) → PostgreSQL, end-to-end acknowledged.

Received batches are committed to PostgreSQL in groups (``gateway.intake``): one transaction
per group, then, and only then, the MQTT acknowledgements and, for every batch that carries an
id, an acknowledgement on its gateway's ack topic (``gateway.uplink``). The gateway keeps a
batch in its own disk buffer until that acknowledgement arrives and sends it again while none
comes, so a worker killed mid-batch, a broker that restarts and forgets the shared
subscription, or a lost acknowledgement costs a resend, never a reading; the database's key
takes a repeated reading once (docs/architecture.md).

A worker therefore keeps no buffer of its own, and its session is not persistent: what a dead
worker had not committed is not its to keep — the gateways still hold it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from gateway import uplink
from gateway.deadletter import DeadLetterStore
from gateway.intake import Intake, Message
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
    def __init__(self, mqtt_url: str, protocol: str, client_id: str, dead_letter_path: Path,
                 sink: Sink, *, topic_filter: str = UPLINK_FILTER, group: str = SHARE_GROUP,
                 max_messages: int = 50) -> None:
        if protocol != "5":
            raise ValueError("lingtan ingest needs an MQTT 5 broker (LINGTAN_MQTT_PROTOCOL=5)"
                             " for shared subscriptions")
        self.client_id = client_id
        self.subscription = f"$share/{group}/{topic_filter}"
        self.dead_letters = DeadLetterStore(dead_letter_path)
        self.sink = sink
        self.received = 0  # messages
        self.written = 0  # readings new to the database
        self.malformed = 0
        self.subscribed = threading.Event()
        self._closing = False
        self.client, self.address = make_client(mqtt_url, protocol, client_id, manual_ack=True)
        self.protocol = protocol
        # back quickly after a broker restart: Mosquitto forgets $share subscriptions until we renew
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=2)
        self.intake = Intake(self.client, self._commit, name="ingest", max_batch=max_messages)
        # central, next to the database: refresh the rollups it marks, readings first
        self.rollups = (RollupWorker(sink.url, defer=lambda: self.intake.pending() > 0)
                        if isinstance(sink, PostgresSink) else None)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        # on_message, not message_callback_add: a "$share/..." callback filter never matches
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.intake.start()
        if self.rollups is not None:
            self.rollups.start()
        self.client.connect_async(self.address.host, self.address.port, keepalive=30,
                                  **connect_kwargs(self.protocol, False))
        self.client.loop_start()

    def stop(self) -> None:
        self._closing = True
        # the last group is committed and acknowledged before the connection goes
        self.client.unsubscribe(self.subscription)
        self.intake.stop()
        self.client.disconnect()
        self.client.loop_stop()
        if self.rollups is not None:
            self.rollups.stop()
        self.sink.close()
        self.dead_letters.close()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason: mqtt.ReasonCode, properties: object = None) -> None:
        if reason.is_failure:
            log.warning("ingest connect refused", extra={"reason": str(reason)})
            return
        self.intake.connected()
        client.subscribe(self.subscription, qos=1)
        log.info("ingest connected", extra={"client_id": self.client_id,
                                            "subscription": self.subscription})

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
        self.received += 1
        self.intake.offer(msg)

    def _commit(self, group: list[Message]) -> None:
        """One transaction for the group, then the acknowledgements; raises → nothing acked."""
        rows = []
        acks: list[tuple[str, str]] = []
        bad: list[tuple[Message, str]] = []
        for msg in group:
            try:
                batch = uplink.decode(msg.payload)
            except uplink.UplinkError as exc:
                bad.append((msg, str(exc)))
                continue
            rows += [(r.time, r.meter_id, r.quantity, r.value, int(r.quality))
                     for r in batch.readings]
            if batch.id is not None:
                acks.append((uplink.ack_topic(batch.site, batch.gateway), batch.id))
        self.written += self.sink.write_rows(rows)
        for msg, reason in bad:
            self._reject(msg, reason)
        for topic, batch_id in acks:
            # after the commit: a lost acknowledgement only makes the gateway send the batch again
            self.client.publish(topic, uplink.encode_ack(batch_id), qos=1)
        log.debug("uplink group committed", extra={"messages": len(group), "readings": len(rows),
                                                   "acknowledged": len(acks)})

    def _reject(self, msg: Message, reason: str) -> None:
        self.malformed += 1
        log.warning("malformed uplink payload", extra={"topic": msg.topic, "reason": reason,
                                                       "bytes": len(msg.payload)})
        try:
            self.dead_letters.add(msg.topic, reason, msg.payload, msg.arrived)
        except Exception:
            log.exception("cannot store dead letter", extra={"topic": msg.topic})


def run_ingest(mqtt_url: str, protocol: str, database_url: str, client_id: str,
               dead_letter_path: Path, stopping: threading.Event) -> None:
    worker = IngestWorker(mqtt_url, protocol, client_id, dead_letter_path,
                          PostgresSink(database_url, application_name=client_id[:63]))
    log.info("ingest starting", extra={"client_id": client_id,
                                       "dead_letters": str(dead_letter_path)})
    worker.start()
    stopping.wait()
    log.info("ingest stopping", extra={"received": worker.received, "written": worker.written})
    worker.stop()
