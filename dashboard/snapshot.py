"""Everything one refresh needs, read through the API's public service functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from api.services import kpi, queries


@dataclass
class Snapshot:
    now: datetime
    site: queries.Site
    roles: dict[str, list[str]]  # meter role → meter ids, to tell "offline" from "no meter"
    overview: kpi.Overview
    series: kpi.PowerSeries
    series_start: datetime
    series_end: datetime


def load_snapshot(conn: sa.Connection, site_id: str, now: datetime, series_start: datetime,
                  series_end: datetime) -> Snapshot:
    """Site, KPIs at ``now`` and the power series for [series_start, series_end)."""
    site = queries.get_site(conn, site_id)
    roles: dict[str, list[str]] = {}
    for meter in queries.list_meters(conn, site_id):
        if meter.role:
            roles.setdefault(meter.role, []).append(meter.id)
    overview = kpi.site_overview(conn, site_id, now)
    series = kpi.power_series(conn, site_id, series_start, series_end, resolution="1m")
    return Snapshot(now, site, roles, overview, series, series_start, series_end)
