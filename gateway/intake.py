"""Group commit for MQTT subscribers: acknowledge a QoS 1 message only once it is durable.

``offer`` (from ``on_message``, on paho's loop thread) files a message; as soon as no further
message is waiting on the socket — or ``max_batch`` are filed — everything filed is handed to
``handle`` (decode, validate and store it in one transaction) and only then acknowledged (paho 2's
manual acknowledgement). A process killed at any moment has acknowledged nothing it had not
stored, and the broker redelivers the rest to the persistent session.

Why batches, and why on the loop thread: the broker keeps only a few messages in flight per
client (Mosquitto: ``max_inflight_messages`` 20) and queues the rest up to
``max_queued_messages`` (1000), dropping beyond that. A transaction per message topped out below
what one publisher sends; a batch per socket read amortises the commit, and it grows by itself
with the load because under load more messages are already waiting. Handing batches to another
thread cost a quarter of the rate (one interpreter lock, two threads trading it) — so the loop
thread commits; a helper thread only commits a batch left waiting for bytes that were not a
message, and retries a batch the store refused (docs/architecture.md, benchmarks/README.md).
"""

from __future__ import annotations

import logging
import select
import ssl
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

LINGER = 0.25  # s a filed message may wait for bytes that turn out not to be a message


class Intake:
    """Between paho's ``on_message`` and durable storage, for one client.

    ``handle`` must store the whole batch or raise; on an exception nothing is acknowledged and
    the same batch (with whatever arrived meanwhile) is tried again after a back-off, so
    ``handle`` must be safe to repeat (the buffer and the database take a repeated reading once
    downstream).
    """

    def __init__(self, client: mqtt.Client, handle: Handle, *, name: str,
                 max_batch: int = 2000) -> None:
        self.client = client
        self.handle = handle
        self.name = name
        self.max_batch = max_batch
        self.connection = 0
        self.batches = 0
        self.last_error: str | None = None
        self._last_batch = 0.0  # monotonic time of the last commit
        self._pending: list[Message] = []
        self._lock = threading.Lock()  # one flush at a time: the loop thread's or the helper's
        self._plock = threading.Lock()  # the pending list, held only for a moment
        self._failing = threading.Event()  # a batch was refused: the helper retries it
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def connected(self) -> None:
        """Call from ``on_connect``: acknowledgements of earlier connections are void now."""
        with self._plock:
            self.connection += 1

    def offer(self, msg: mqtt.MQTTMessage) -> None:
        """Call from ``on_message``: file the message; commit the batch when no more wait."""
        item = Message(msg.topic, msg.payload, msg.mid, msg.qos, datetime.now(UTC), self.connection)
        with self._plock:
            self._pending.append(item)
        if self._failing.is_set():
            return  # the helper takes it with the refused batch
        # what waits may be a SUBACK or a PINGRESP rather than a message: then the helper thread
        # commits the batch within LINGER
        if len(self._pending) >= self.max_batch or not self._more_waiting():
            self._flush()

    def _more_waiting(self) -> bool:
        sock = self.client.socket()
        if sock is None:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._helper, name=f"{self.name}-intake",
                                         daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is filed, then stop; call after the client stopped receiving."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if not self._failing.is_set():
            self._flush()

    def busy(self, within: float = 0.1) -> bool:
        """True while messages are coming in: a batch was committed within ``within`` seconds."""
        return time.monotonic() - self._last_batch < within

    def pending(self) -> int:
        return len(self._pending)

    def _flush(self) -> bool:
        with self._lock:
            with self._plock:
                batch, self._pending = self._pending, []
            if not batch:
                return True
            try:
                self.handle(batch)
            except Exception as exc:
                # unacknowledged, the batch stays the broker's; keep it and retry, as it would
                with self._plock:
                    self._pending = batch + self._pending
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not self._failing.is_set():
                    log.warning("cannot store received messages; will retry", extra={
                        "intake": self.name, "messages": len(batch), "error": self.last_error})
                self._failing.set()
                return False
            self.last_error = None
            self._last_batch = time.monotonic()
            connection = self.connection
            for m in batch:
                # a message of an earlier connection is redelivered on this one and acked then
                if m.qos > 0 and m.connection == connection:
                    self.client.ack(m.mid, m.qos)
            self.batches += 1
            return True

    def _helper(self) -> None:
        """Commits batches left lingering, and retries a batch the store refused."""
        delay = 0.2
        while not self._stopping.is_set():
            if not self._failing.is_set():
                # polled, not signalled: waking a thread per message costs the loop thread the
                # interpreter lock, and under load the loop thread commits often anyway
                batches, waiting = self.batches, bool(self._pending)
                if self._stopping.wait(LINGER):
                    return
                if waiting and self.batches == batches and self._pending:
                    self._flush()
                continue
            if self._stopping.wait(delay):
                return
            if self._flush():
                self._failing.clear()
                delay = 0.2
                log.info("received messages stored again", extra={"intake": self.name})
            else:
                delay = min(delay * 2, 10.0)
