"""Dead letters: messages that could not be decoded, kept with their raw bytes.

A field engineer fixing a mapping needs the exact payload that failed, so a malformed message
is stored (topic, arrival time, reason, payload) instead of only logged. The store lives in a
sibling SQLite file of the buffer, so it never competes with the buffer's own bound or format.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime
    topic: str
    reason: str
    payload: bytes


def sibling_path(buffer_path: Path) -> Path:
    """``var/buffer.db`` → ``var/buffer.deadletters.db``."""
    return buffer_path.with_name(f"{buffer_path.stem}.deadletters.db")


class DeadLetterStore:
    def __init__(self, path: Path, max_rows: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # A device spewing garbage must not fill the disk: keep the newest max_rows, count the rest.
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def add(self, topic: str, reason: str, payload: bytes, received_at: datetime | None = None) -> None:
        at = (received_at or datetime.now(UTC)).isoformat()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO dead_letters (received_at, topic, reason, payload) VALUES (?,?,?,?)",
                (at, topic, reason, bytes(payload)),
            )
            cur = self._db.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?",
                (self.max_rows,),
            )
            if cur.rowcount > 0:
                self._db.execute(
                    "INSERT INTO dead_letter_counters (name, value) VALUES ('dropped', ?)"
                    " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    (cur.rowcount,),
                )
            self._db.execute("COMMIT")

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def dropped(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM dead_letter_counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, received_at, topic, reason, payload FROM dead_letters"
                " ORDER BY id DESC LIMIT ?", (limit,),
            ).fetchall()
        return [DeadLetter(r[0], datetime.fromisoformat(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
