"""Durable on-disk buffer (SQLite, WAL) between collectors and sinks.

A reading is deleted only after a sink has committed it. When the file outgrows its bound
the oldest readings are dropped first and counted, never silently.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lingtan.kernel.reading import Reading

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time_us  INTEGER NOT NULL,
    meter_id TEXT NOT NULL,
    quantity TEXT NOT NULL,
    value    REAL NOT NULL,
    quality  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_us(t: datetime) -> int:
    delta = t - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class DiskBuffer:
    def __init__(self, path: Path, max_bytes: int = 2 * 10**9,
                 when_full: str = "drop_oldest") -> None:
        if when_full not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"when_full must be drop_oldest or drop_newest, not {when_full!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.when_full = when_full
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only an OS crash can lose the tail.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        # The drain reads through a connection of its own: in WAL mode a reader never blocks
        # the writer, so a long peek of a big batch does not hold up collectors' appends.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    def append(self, readings: list[Reading]) -> None:
        if not readings:
            return
        us_of: dict[datetime, int] = {}
        rows = []
        for r in readings:
            us = us_of.get(r.time)
            if us is None:  # one poll's readings share a timestamp: convert it once
                us = us_of[r.time] = _to_us(r.time)
            rows.append((us, r.meter_id, r.quantity, r.value, int(r.quality)))
        with self._lock:
            if self.when_full == "drop_newest" and self._used_bytes() > self.max_bytes:
                self._count_dropped(len(rows))
                log.warning("buffer full: dropped newest readings",
                            extra={"dropped": len(rows), "max_bytes": self.max_bytes})
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO pending (time_us, meter_id, quantity, value, quality) VALUES (?,?,?,?,?)",
                rows,
            )
            self._db.execute("COMMIT")
            self._enforce_bound()

    def peek(self, limit: int) -> tuple[int, list[Reading]]:
        """Oldest readings first; returns the last id to pass to ``ack``."""
        last_id, rows = self.peek_rows(limit)
        return last_id, [Reading(*row) for row in rows]

    def peek_rows(self, limit: int, after_id: int = 0
                  ) -> tuple[int, list[tuple[datetime, str, str, float, int]]]:
        """Like ``peek`` after ``after_id``, as (time, meter, quantity, value, quality) tuples:
        the drain path, where building a Reading per row would cost more than the COPY."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT id, time_us, meter_id, quantity, value, quality FROM pending"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        if not rows:
            return after_id, []
        times: dict[int, datetime] = {}
        out = []
        for _, us, meter, quantity, value, quality in rows:
            t = times.get(us)
            if t is None:  # one poll's readings share a timestamp: convert it once
                t = times[us] = _from_us(us)
            out.append((t, meter, quantity, value, quality))
        return rows[-1][0], out

    def ack(self, last_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pending WHERE id <= ?", (last_id,))

    def pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM pending").fetchone()[0]

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _used_bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._page_size)

    def _count_dropped(self, n: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('dropped', ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (n,),
        )

    def _enforce_bound(self) -> None:
        if self.when_full != "drop_oldest" or self._used_bytes() <= self.max_bytes:
            return
        # Drop the oldest tenth of what is pending: newest data matters most to a live plant.
        total = self._db.execute("SELECT count(*) FROM pending").fetchone()[0]
        drop = max(1, total // 10)
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "DELETE FROM pending WHERE id IN (SELECT id FROM pending ORDER BY id LIMIT ?)", (drop,)
        )
        self._count_dropped(drop)
        self._db.execute("COMMIT")
        log.warning("buffer full: dropped oldest readings", extra={"dropped": drop,
                                                                  "max_bytes": self.max_bytes})

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()
