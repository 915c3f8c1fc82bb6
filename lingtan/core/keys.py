"""Bearer API keys with roles: viewer reads, engineer changes devices, sites and rules, admin manages keys.

A key is ``lt_<prefix>_<secret>``. Only the prefix (to find the row) and a SHA-256 of the whole
key are stored: the secret has 256 bits of entropy, so a slow password hash would add nothing
but latency to every request. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

RoleName = Literal["viewer", "engineer", "admin"]
RANK: dict[str, int] = {"viewer": 0, "engineer": 1, "admin": 2}
PREFIX = "lt_"


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    role: str
    name: str


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: sa.Connection, role: str, name: str = "") -> tuple[ApiKey, str]:
    """Store a new key and return it with its plain text, which is never stored or shown again."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(RANK)})")
    prefix = secrets.token_hex(4)
    key = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = conn.execute(
        sa.text("INSERT INTO api_keys (prefix, hash, role, name) VALUES (:p, :h, :r, :n) RETURNING id"),
        {"p": prefix, "h": _digest(key), "r": role, "n": name},
    ).one()
    return ApiKey(row[0], prefix, role, name), key


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as an admin sees it: never its hash, never its secret."""

    id: int
    prefix: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


_KEY_INFO = "SELECT id, prefix, role, name, created_at, revoked_at FROM api_keys"


def list_keys(conn: sa.Connection, limit: int | None = None, offset: int = 0) -> tuple[list[KeyInfo], int]:
    """One page of keys, oldest first, revoked ones included (an audit wants them), and the total."""
    rows = conn.execute(sa.text(_KEY_INFO + " ORDER BY id LIMIT :n OFFSET :o"),
                        {"n": limit, "o": offset})
    total = conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one()
    return [KeyInfo(*row) for row in rows], total


def get_key(conn: sa.Connection, key_id: int) -> KeyInfo | None:
    row = conn.execute(sa.text(_KEY_INFO + " WHERE id = :id"), {"id": key_id}).first()
    return None if row is None else KeyInfo(*row)


def revoke_key(conn: sa.Connection, key_id: int) -> KeyInfo | None:
    """Revoke a key at once; revoking it again keeps the first time. None if there is no such key."""
    conn.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"),
                 {"id": key_id})
    return get_key(conn, key_id)


def verify_key(conn: sa.Connection, key: str) -> ApiKey | None:
    parts = key.split("_")
    if len(parts) < 3 or f"{parts[0]}_" != PREFIX:
        return None
    row = conn.execute(
        sa.text("SELECT id, prefix, hash, role, name FROM api_keys WHERE prefix = :p AND revoked_at IS NULL"),
        {"p": parts[1]},
    ).first()
    if row is None or not hmac.compare_digest(row[2], _digest(key)):
        return None
    return ApiKey(row[0], row[1], row[3], row[4])
