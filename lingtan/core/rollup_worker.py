"""Keeping the rollups current: central work, run where the database is.

Writers (a gateway's PostgreSQL sink, an ingest worker) only mark the buckets they touched, in
the transaction that stores the readings (``lingtan.core.rollups``). Re-materialising the marked
buckets — the rollup tables, ``compressor_1h``, and dropping the ``series_cache`` rows they
change — is done here, by ``RollupWorker`` threads in ``lingtan api``, ``lingtan ingest`` and
``lingtan rollups``. A field gateway never runs one: an edge box must not maintain central
tables. Any number may run against one database; ``rollups.refresh_dirty`` takes turns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import psycopg

from lingtan.core import rollups
from lingtan.kernel.db import libpq_url

log = logging.getLogger(__name__)

BATCH = 20_000  # marks per refresh transaction


def session_name() -> str:
    """The refresher's database session name, so pg_stat_activity tells which process it is."""
    return f"lingtan-rollups {socket.gethostname()[:30]}:{os.getpid()}"


class RollupRefresher:
    """Re-materialises marked rollup buckets over one lazily (re)opened connection of its own."""

    def __init__(self, database_url: str) -> None:
        self.url = libpq_url(database_url)
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, connect_timeout=5, application_name=session_name())
        return self._conn

    def refresh(self, limit: int = BATCH) -> int:
        """One transaction of at most ``limit`` marked buckets; returns how many it refreshed."""
        try:
            return rollups.refresh_dirty(self._connection(), limit)
        except BaseException:
            self.close()  # the next call reconnects
            raise

    def refresh_all(self) -> int:
        """Refresh until no marks are left (seeding, backfills, tests)."""
        total = 0
        while n := self.refresh():
            total += n
        return total

    def pending(self) -> int:
        """Marked buckets waiting for a refresh."""
        try:
            conn = self._connection()
            with conn.transaction():
                return int(conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0])  # type: ignore[index]
        except BaseException:
            self.close()
            raise

    def cancel(self) -> None:
        """Abort the statement running on this refresher's connection (from another thread);
        its transaction rolls back and its marks stay for the next refresh."""
        conn = self._conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=5)

    def close(self) -> None:
        if self._conn is not None:
            try:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
            finally:
                self._conn = None


class RollupWorker:
    """A thread that catches up on every mark every ``every`` seconds, until stopped.

    ``defer`` lets a process that also writes readings put its writes first: while it returns
    True the worker waits, but never longer than ``max_lag`` seconds since its last catch-up.
    A failed refresh (the database away) is logged and retried on the next round; stopping
    leaves what is not refreshed yet marked in the database, for whichever worker runs next.
    """

    def __init__(self, database_url: str, *, every: float = 2.0, limit: int = BATCH,
                 defer: Callable[[], bool] | None = None, max_lag: float = 30.0,
                 report_every: float = 60.0, name: str = "rollups") -> None:
        self.refresher = RollupRefresher(database_url)
        self.every = every
        self.limit = limit
        self.defer = defer
        self.max_lag = max_lag
        self.report_every = report_every
        self.name = name
        self.refreshed = 0  # buckets, since start
        self.rounds = 0  # catch-ups that finished
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the refresh in progress; past ``timeout`` seconds cancel it instead."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                self.refresher.cancel()
                thread.join(5)
        if thread is None or not thread.is_alive():
            self.refresher.close()  # not while the thread may still use the connection

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def catch_up(self) -> int:
        """Refresh batch after batch until the marks are done (or the worker is stopping)."""
        total = 0
        while not self._stop.is_set():
            n = self.refresher.refresh(self.limit)
            total += n
            self.refreshed += n
            if n < self.limit:  # the last batch: what is marked from now on is the next round's
                break
        return total

    def _run(self) -> None:
        log.info("rollup refresher started", extra={"every_s": self.every, "batch": self.limit})
        last = window = time.monotonic()
        window_buckets, window_busy = 0, 0.0
        while not self._stop.is_set():
            if self.defer is not None and self.defer() and time.monotonic() - last < self.max_lag:
                self._stop.wait(self.every)
                continue
            started = time.monotonic()
            try:
                n = self.catch_up()
            except Exception as exc:
                if self._stop.is_set():
                    break  # cancelled by stop(): the marks stay
                if self.last_error != str(exc):  # once per distinct failure, not every round
                    log.warning("rollup refresh failed; will retry",
                                extra={"error": str(exc), "retry_in_s": self.every})
                self.last_error = str(exc)
            else:
                last = time.monotonic()
                took = last - started
                self.rounds += 1
                window_buckets, window_busy = window_buckets + n, window_busy + took
                if self.last_error is not None:
                    log.info("rollup refresh works again", extra={"buckets": n})
                    self.last_error = None
                if n >= self.limit:
                    log.info("rollup backlog caught up", extra={"buckets": n, "seconds": round(took, 2)})
                else:
                    log.debug("rollups refreshed", extra={"buckets": n, "seconds": round(took, 3)})
                # one line a minute while there is work: the log shows the refresher is alive and
                # how busy it is, without a line every round
                if last - window >= self.report_every:
                    if window_buckets:
                        log.info("rollups refreshed", extra={
                            "buckets": window_buckets, "window_s": round(last - window),
                            "busy_s": round(window_busy, 1)})
                    window, window_buckets, window_busy = last, 0, 0.0
            self._stop.wait(self.every)
        log.info("rollup refresher stopped", extra={"buckets": self.refreshed, "rounds": self.rounds})
