"""Database engine, URL handling and feature detection (TimescaleDB)."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def sqlalchemy_url(url: str) -> str:
    """Any postgres URL → the SQLAlchemy form that uses psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"LINGTAN_DATABASE_URL must be a postgresql:// URL, got {url!r}")


def libpq_url(url: str) -> str:
    """Any postgres URL → the plain libpq form psycopg.connect() takes."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://") :]


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    # Sessions in UTC: every query states its own zone (sites' zones are applied in Python), and
    # psycopg then returns datetime.timezone.utc values, which compare and hash several times
    # faster than ZoneInfo ones (a year of hourly KPI points handles ~100,000 of them).
    options = {} if "options=" in url else {"connect_args": {"options": "-c TimeZone=UTC"}}
    return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5, **options)


def has_timescaledb(conn: sa.Connection) -> bool:
    """True when the timescaledb extension is installed in this database."""
    return bool(
        conn.execute(
            sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        ).scalar()
    )


def timescaledb_available(conn: sa.Connection) -> bool:
    """True when the server could install the extension (it is in shared_preload_libraries)."""
    available = conn.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar()
    if not available:
        return False
    preload = conn.execute(sa.text("SHOW shared_preload_libraries")).scalar() or ""
    return "timescaledb" in preload
