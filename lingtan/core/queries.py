"""Reads from the database: sites, meters, readings series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lingtan.core.rollups import RESOLUTIONS


class NotFound(LookupError):
    pass


@dataclass
class Site:
    id: str
    name: str
    timezone: str
    grid_region: str


@dataclass
class Meter:
    id: str
    site_id: str
    name: str
    role: str | None
    protocol: str | None


def list_sites(conn: sa.Connection) -> list[Site]:
    rows = conn.execute(sa.text("SELECT id, name, timezone, grid_region FROM sites ORDER BY id"))
    return [Site(*row) for row in rows]


def get_site(conn: sa.Connection, site_id: str) -> Site:
    row = conn.execute(
        sa.text("SELECT id, name, timezone, grid_region FROM sites WHERE id = :id"), {"id": site_id}
    ).first()
    if row is None:
        raise NotFound(f"site {site_id!r} not found")
    return Site(*row)


def list_meters(conn: sa.Connection, site_id: str) -> list[Meter]:
    get_site(conn, site_id)
    rows = conn.execute(
        sa.text("SELECT id, site_id, name, role, protocol FROM meters WHERE site_id = :s ORDER BY id"),
        {"s": site_id},
    )
    return [Meter(*row) for row in rows]


def get_meter(conn: sa.Connection, meter_id: str) -> Meter:
    row = conn.execute(sa.text("SELECT id, site_id, name, role, protocol FROM meters WHERE id = :m"),
                       {"m": meter_id}).first()
    if row is None:
        raise NotFound(f"meter {meter_id!r} not found")
    return Meter(*row)


def meters_by_role(conn: sa.Connection, site_id: str, role: str) -> list[str]:
    rows = conn.execute(
        sa.text("SELECT id FROM meters WHERE site_id = :s AND role = :r ORDER BY id"),
        {"s": site_id, "r": role},
    )
    return [r[0] for r in rows]


def readings_series(conn: sa.Connection, meter_id: str, quantity: str, start: datetime,
                    end: datetime, resolution: str = "raw", limit: int = 100_000
                    ) -> list[tuple[datetime, float, float | None, float | None, int]]:
    """(time, value, min, max, quality-or-count) rows; raw rows or rollup averages."""
    if resolution == "raw":
        rows = conn.execute(
            sa.text(
                "SELECT time, value, NULL, NULL, quality FROM readings WHERE meter_id = :m"
                " AND quantity = :q AND time >= :a AND time < :b ORDER BY time LIMIT :n"
            ),
            {"m": meter_id, "q": quantity, "a": start, "b": end, "n": limit},
        )
    else:
        table = RESOLUTIONS[resolution]
        rows = conn.execute(
            sa.text(
                f"SELECT bucket, avg, min, max, count FROM {table} WHERE meter_id = :m"
                " AND quantity = :q AND bucket >= :a AND bucket < :b ORDER BY bucket LIMIT :n"
            ),
            {"m": meter_id, "q": quantity, "a": start, "b": end, "n": limit},
        )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def latest(conn: sa.Connection, meter_id: str, quantity: str) -> tuple[datetime, float] | None:
    """The newest reading of a series, from the last-value table its writers keep
    (lingtan/core/latest.py): one row, whatever the length of the history."""
    row = conn.execute(
        sa.text("SELECT time, value FROM latest_readings WHERE meter_id = :m AND quantity = :q"),
        {"m": meter_id, "q": quantity},
    ).first()
    return None if row is None else (row[0], row[1])


@dataclass
class MeterLatest:
    id: str
    name: str
    role: str | None
    protocol: str | None
    gateway_id: str | None
    time: datetime | None      # newest reading of any quantity
    quantity: str | None
    value: float | None
    quality: int | None        # lingtan.kernel.reading.Quality bits of that reading


def meters_latest(conn: sa.Connection, site_id: str) -> list[MeterLatest]:
    """Every meter of the site with its newest reading of any quantity, from the last-value table
    (one row per quantity the meter has reported), never from the meter's history."""
    get_site(conn, site_id)
    rows = conn.execute(
        sa.text(
            """
            SELECT m.id, m.name, m.role, m.protocol, m.gateway_id, l.time, l.quantity, l.value, l.quality
            FROM meters m
            LEFT JOIN LATERAL (
                SELECT time, quantity, value, quality FROM latest_readings l
                WHERE l.meter_id = m.id ORDER BY time DESC, quantity LIMIT 1
            ) l ON true
            WHERE m.site_id = :s ORDER BY m.id
            """
        ),
        {"s": site_id},
    )
    return [MeterLatest(*row) for row in rows]
