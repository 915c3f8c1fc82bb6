"""Group commit for MQTT subscribers: acknowledge a QoS 1 message only once it is durable.

paho's loop thread only files each message here (``offer``, a few microseconds); a committer
thread takes everything filed so far as one batch, hands it to ``handle`` (decode, validate and
store it in one transaction) and only then sends the PUBACKs (paho 2's manual acknowledgement).
So a process killed at any moment has acknowledged nothing it had not stored, and the broker
redelivers the rest to the persistent session.

Why batches and not a message at a time: the broker keeps only a few messages in flight per
client (Mosquitto: ``max_inflight_messages`` 20) and queues the rest up to
``max_queued_messages`` (1000), dropping beyond that. A message at a time, each with its own
SQLite transaction, topped out well below what one publisher sends (benchmarks/README.md); one
transaction per batch amortises the commit, and the batch grows by itself with the load
because messages pile up while the previous batch commits (docs/architecture.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    arrived: datetime
    connection: int  # which connection it came on: a PUBACK is only valid on that one


Handle = Callable[[list[Message]], None]


class Intake:
    """Between paho's ``on_message`` and durable storage, for one client.

    ``handle`` must store the whole batch or raise; on an exception nothing is acknowledged and
    the same batch is tried again after a back-off, so ``handle`` must be safe to repeat (the
    buffer and the database take a repeated reading once downstream).
    """

    def __init__(self, client: mqtt.Client, handle: Handle, *, name: str,
                 max_batch: int = 5000) -> None:
        self.client = client
        self.handle = handle
        self.name = name
        self.max_batch = max_batch
        self.connection = 0
        self.committed = 0  # messages stored and acknowledged
        self.batches = 0
        self.last_error: str | None = None
        self._pending: list[Message] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def connected(self) -> None:
        """Call from ``on_connect``: acknowledgements of earlier connections are void now."""
        with self._cond:
            self.connection += 1

    def offer(self, msg: mqtt.MQTTMessage) -> None:
        """Call from ``on_message`` (paho's loop thread): file the message, acknowledge later."""
        item = Message(msg.topic, msg.payload, msg.mid, msg.qos, datetime.now(UTC), self.connection)
        with self._cond:
            self._pending.append(item)
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-commit", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is filed, then stop; call after the client stopped receiving."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def _take(self) -> list[Message] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if not self._pending:
                return None
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            return batch

    def _run(self) -> None:
        delay = 0.2
        while (batch := self._take()) is not None:
            while True:
                try:
                    self.handle(batch)
                    self.last_error, delay = None, 0.2
                    break
                except Exception as exc:
                    # unacknowledged, the batch stays the broker's; retry it, as the broker would
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("cannot store received messages; will retry", extra={
                        "intake": self.name, "messages": len(batch), "error": self.last_error,
                        "retry_in_s": delay})
                    with self._cond:
                        if self._stopping:
                            return
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)
            self._ack(batch)

    def _ack(self, batch: list[Message]) -> None:
        connection = self.connection
        for m in batch:
            # a message of an earlier connection is redelivered on this one and acked then
            if m.qos > 0 and m.connection == connection:
                self.client.ack(m.mid, m.qos)
        self.committed += len(batch)
        self.batches += 1
