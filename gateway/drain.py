"""The one writer path's last leg: buffer → sink, plus rollup refreshing.

Three threads: a reader that prefetches the next batch from the disk buffer while PostgreSQL
commits the current one, the writer that commits and acks, and a refresher that re-materialises
the rollup buckets the writes marked. A batch leaves the buffer only after the sink committed it.
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


class Drainer:
    def __init__(self, buffer: DiskBuffer, write_rows: Callable[[list[Row]], int], *,
                 batch: int = 5000, refresh: Callable[[], int] | None = None,
                 refresh_every: float = 2.0, max_rollup_lag: float = 30.0,
                 before_first_write: Callable[[], None] | None = None) -> None:
        self.buffer = buffer
        self.write_rows = write_rows
        self.batch = batch
        self.refresh = refresh
        self.refresh_every = refresh_every
        self.max_rollup_lag = max_rollup_lag
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
        if self.refresh is not None:
            self._threads.append(threading.Thread(target=self._refresh, name="rollups", daemon=True))
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
        if self.refresh is not None:
            self._safe_refresh_all()

    def _healthy(self) -> bool:
        return self.last_error is None

    def _read(self) -> None:
        after = 0
        while not self._stop.is_set():
            last_id, rows = self.buffer.peek_rows(self.batch, after)
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

    def _refresh(self) -> None:
        # Readings first, aggregates after: while the writer has a backlog (the prefetch queue
        # is full) refreshing waits, but never longer than max_rollup_lag.
        assert self.refresh is not None
        last = time.monotonic()
        while not self._stop.wait(self.refresh_every):
            if not self._batches.empty() and time.monotonic() - last < self.max_rollup_lag:
                continue
            try:
                while self.refresh() and not self._stop.is_set():
                    pass
                last = time.monotonic()
            except Exception as exc:
                log.warning("rollup refresh failed; will retry", extra={"error": str(exc)})

    def _safe_refresh_all(self) -> None:
        assert self.refresh is not None
        try:
            while self.refresh():
                pass
        except Exception as exc:
            log.warning("final rollup refresh failed; marks stay for the next run",
                        extra={"error": str(exc)})
