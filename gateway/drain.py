"""The one writer path's last leg: buffer → sink.

Two threads: a reader that prefetches the next batch from the disk buffer while the sink
commits the current one, and the writer that commits and acks. A batch leaves the buffer only
after the sink committed it. Rollups are not refreshed here: that is central work
(``lingtan.core.rollup_worker``), which a process writing PostgreSQL may run beside its drain.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from gateway.buffer import DiskBuffer

log = logging.getLogger(__name__)

Row = tuple[datetime, str, str, float, int]
BUSY_BATCH = 2000  # rows per drain batch while a collector is taking in a burst


class Drainer:
    def __init__(self, buffer: DiskBuffer, write_rows: Callable[[list[Row]], int], *,
                 batch: int = 5000, before_first_write: Callable[[], None] | None = None,
                 defer: Callable[[], bool] | None = None, max_defer: float = 5.0) -> None:
        self.buffer = buffer
        # While ``defer()`` is true (a collector taking in a burst) the drain waits, up to
        # ``max_defer`` seconds, then empties the buffer: both share one interpreter lock, and
        # a broker drops what a slow intake does not take, while the buffer keeps what waits.
        self.defer = defer
        self.max_defer = max_defer
        self.write_rows = write_rows
        self.batch = batch
        self.before_first_write = before_first_write
        self.written = 0  # new rows committed
        self.delivered = 0  # rows acked (new or already stored)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._batches: queue.Queue[tuple[int, list[Row]]] = queue.Queue(maxsize=2)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._read, name="drain-read", daemon=True),
                         threading.Thread(target=self._write, name="drain-write", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        """Give the writer up to ``drain_seconds`` to empty the buffer, then stop; what is left
        stays on disk for the next start."""
        deadline = time.monotonic() + drain_seconds
        while self.buffer.pending() > 0 and time.monotonic() < deadline and self._healthy():
            time.sleep(0.05)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def backlog(self) -> bool:
        """True while a batch read from the buffer waits for the writer (it is behind)."""
        return not self._batches.empty()

    def _healthy(self) -> bool:
        return self.last_error is None

    def _read(self) -> None:
        after = 0
        draining = False  # once begun, a drain goes on until the buffer is empty
        deferred_since: float | None = None
        while not self._stop.is_set():
            busy = self.defer is not None and self.defer()
            if not draining and busy:
                now = time.monotonic()
                deferred_since = deferred_since or now
                if now - deferred_since < self.max_defer:
                    self._stop.wait(0.02)
                    continue
            deferred_since = None
            # beside a busy intake, small batches: a big one holds the interpreter lock (and the
            # buffer's write lock, to delete it) long enough for the broker's queue to overflow
            last_id, rows = self.buffer.peek_rows(min(self.batch, BUSY_BATCH) if busy else self.batch,
                                                  after)
            draining = bool(rows)
            if not rows:
                self._stop.wait(0.05)
                continue
            while not self._stop.is_set():
                try:
                    self._batches.put((last_id, rows), timeout=0.2)
                    after = last_id
                    break
                except queue.Full:
                    continue

    def _write(self) -> None:
        delay = 0.5
        started = False
        while not self._stop.is_set():
            try:
                last_id, rows = self._batches.get(timeout=0.2)
            except queue.Empty:
                continue
            while not self._stop.is_set():
                try:
                    if not started and self.before_first_write is not None:
                        self.before_first_write()
                    started = True
                    self.written += self.write_rows(rows)
                    self.buffer.ack(last_id)
                    self.delivered += len(rows)
                    self.last_error, delay = None, 0.5
                    break
                except Exception as exc:
                    self.last_error = str(exc)
                    log.warning("sink write failed; will retry", extra={"error": str(exc),
                                                                        "retry_in_s": delay})
                    self._stop.wait(delay)
                    delay = min(delay * 2, 30.0)
