"""Gateway heartbeats: the latest health snapshot each gateway upserted, and whether it is online."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lingtan.core.queries import NotFound

# A gateway is online while its last heartbeat is younger than this many intervals: one late
# beat (a slow database, a GC pause) must not flap the state.
MISSED_BEATS = 3
DEFAULT_HEARTBEAT_S = 30.0


@dataclass
class Gateway:
    id: str
    site_id: str | None
    last_heartbeat: datetime
    heartbeat_age_s: float
    online: bool
    status: dict[str, Any]


_SELECT = ("SELECT gateway_id, site_id, time, extract(epoch FROM now() - time)::float8, status"
           " FROM gateway_heartbeats")


def _gateway(row: sa.Row[Any]) -> Gateway:
    gateway_id, site_id, time, age, status = row
    interval = float(status.get("heartbeat_s") or DEFAULT_HEARTBEAT_S)
    # age and time are both on the database clock, so gateway clock drift cannot fake liveness
    online = bool(status.get("running", True)) and age <= MISSED_BEATS * interval
    return Gateway(gateway_id, site_id, time, age, online, status)


def list_gateways(conn: sa.Connection) -> list[Gateway]:
    return [_gateway(r) for r in conn.execute(sa.text(_SELECT + " ORDER BY gateway_id"))]


def get_gateway(conn: sa.Connection, gateway_id: str) -> Gateway:
    row = conn.execute(sa.text(_SELECT + " WHERE gateway_id = :id"), {"id": gateway_id}).first()
    if row is None:
        raise NotFound(f"gateway {gateway_id!r} has no heartbeat")
    return _gateway(row)
