"""Dashboard users: sign-in names, argon2 password hashes and the same roles as API keys.

People sign in to the dashboard with a user name and a password; scripts and kiosks use API keys
(api/auth.py). Passwords, unlike keys, have little entropy, so they get a slow, memory-hard hash
(argon2id, argon2-cffi's defaults, RFC 9106's low-memory profile). This module needs only
SQLAlchemy and argon2, so the CLI and the dashboard use it without loading the web API.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lingtan.core.keys import RANK

MIN_PASSWORD_LENGTH = 10
# argon2 hashes any length, but hashing megabytes per attempt would hand out a cheap DoS.
MAX_PASSWORD_LENGTH = 1024
# The API key roles, lowest first: a user and a key of one role may do the same things.
ROLES = tuple(sorted(RANK, key=RANK.__getitem__))
LANGUAGES = ("zh", "en")
# Letters of any script, digits and . _ @ -: a name people can type, and one that is safe
# to print in logs and tables without quoting.
_USERNAME = re.compile(r"^[\w.@-]{1,64}$")

HASHER = PasswordHasher()


class UserError(ValueError):
    """Bad input for a user operation; the message starts with the field it is about."""


@dataclass(frozen=True)
class User:
    """A user who just signed in."""

    id: int
    username: str
    role: str
    language: str | None


@dataclass(frozen=True)
class UserInfo:
    """A stored user as an admin sees it: never the password hash."""

    id: int
    username: str
    role: str
    language: str | None
    created_at: datetime
    last_sign_in_at: datetime | None
    disabled_at: datetime | None


def normalize_username(username: str) -> str:
    """The stored form: trimmed and lower-case, so "Li.Wei" and "li.wei" are one user."""
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise UserError("username: use 1 to 64 letters, digits or . _ @ - (no spaces)")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: must be at least {MIN_PASSWORD_LENGTH} characters"
                        f" (got {len(password)})")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"password: must be at most {MAX_PASSWORD_LENGTH} characters")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role: must be one of {' | '.join(ROLES)} (got {role!r})")


def check_language(language: str | None) -> None:
    if language is not None and language not in LANGUAGES:
        raise UserError(f"language: must be one of {' | '.join(LANGUAGES)} (got {language!r})")


def create_user(conn: sa.Connection, username: str, password: str, role: str,
                language: str | None = None) -> UserInfo:
    name = normalize_username(username)
    check_role(role)
    check_language(language)
    check_password(password)
    # ON CONFLICT rather than a prior SELECT: two admins creating the same name at once must
    # not both succeed, and the loser should get the same clear message.
    row = conn.execute(
        sa.text("INSERT INTO users (username, password_hash, role, language)"
                " VALUES (:u, :h, :r, :l) ON CONFLICT (username) DO NOTHING RETURNING id"),
        {"u": name, "h": HASHER.hash(password), "r": role, "l": language},
    ).first()
    if row is None:
        raise UserError(f"username: {name!r} already exists")
    info = get_user(conn, name)
    assert info is not None
    return info


_INFO = "SELECT id, username, role, language, created_at, last_sign_in_at, disabled_at FROM users"


def list_users(conn: sa.Connection) -> list[UserInfo]:
    """Every user, disabled ones included (an audit wants them), oldest first."""
    return [UserInfo(*row) for row in conn.execute(sa.text(_INFO + " ORDER BY id"))]


def get_user(conn: sa.Connection, username: str) -> UserInfo | None:
    row = conn.execute(sa.text(_INFO + " WHERE username = :u"),
                       {"u": username.strip().lower()}).first()
    return None if row is None else UserInfo(*row)


def disable_user(conn: sa.Connection, username: str) -> UserInfo | None:
    """Disable at once (the row stays for the audit trail); again keeps the first time.
    None if there is no such user."""
    conn.execute(sa.text("UPDATE users SET disabled_at = now() WHERE username = :u AND disabled_at IS NULL"),
                 {"u": username.strip().lower()})
    return get_user(conn, username)


def set_password(conn: sa.Connection, username: str, password: str) -> UserInfo | None:
    """A new password; None if there is no such user."""
    check_password(password)
    conn.execute(sa.text("UPDATE users SET password_hash = :h WHERE username = :u"),
                 {"h": HASHER.hash(password), "u": username.strip().lower()})
    return get_user(conn, username)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return HASHER.hash("not a password of anybody")


def authenticate(conn: sa.Connection, username: str, password: str) -> User | None:
    """The user if the password is right and the user is enabled, else None.

    An unknown or disabled name costs one argon2 verification like a known one, so the time
    taken does not tell an attacker which names exist. A hash made with older argon2
    parameters is replaced by one with the current parameters while the password is at hand.
    """
    name = username.strip().lower()
    row = conn.execute(
        sa.text("SELECT id, username, role, language, password_hash, disabled_at FROM users"
                " WHERE username = :u"),
        {"u": name},
    ).first()
    stored = row[4] if row is not None else _dummy_hash()
    try:
        HASHER.verify(stored, password[:MAX_PASSWORD_LENGTH + 1])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row[5] is not None:
        return None
    params = {"id": row[0]}
    rehash = ""
    if HASHER.check_needs_rehash(stored):
        rehash, params["h"] = ", password_hash = :h", HASHER.hash(password)
    conn.execute(sa.text(f"UPDATE users SET last_sign_in_at = now(){rehash} WHERE id = :id"), params)
    return User(row[0], row[1], row[2], row[3])


def verify(conn: sa.Connection, username: str, password: str) -> str | None:
    """The user's role if the password is right and the user is enabled, else None."""
    user = authenticate(conn, username, password)
    return None if user is None else user.role


@dataclass(frozen=True)
class Standing:
    """What a signed-in session needs to re-check: the role now, and a stamp that changes
    whenever the password does (so a new password ends the sessions made with the old one)."""

    role: str
    language: str | None
    stamp: str


def standing(conn: sa.Connection, user_id: int) -> Standing | None:
    """The user's current role and password stamp; None if the user is gone or disabled."""
    row = conn.execute(
        sa.text("SELECT role, language, password_hash FROM users WHERE id = :id AND disabled_at IS NULL"),
        {"id": user_id},
    ).first()
    if row is None:
        return None
    # A digest of the hash, not the hash: the stamp travels in a (signed, not encrypted) cookie.
    return Standing(row[0], row[1], hashlib.sha256(row[2].encode()).hexdigest()[:16])
