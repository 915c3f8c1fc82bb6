"""Everything one Overview refresh needs, read through the API's public service functions: the
same KPI engine as ``GET /sites/{id}/kpis``, so a tile and the API agree for the same window."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from lingtan.core import kpi, queries
from lingtan.core.series import KpiSeries, kpi_series

# sinks of the power-flow diagram, by meter role; whatever they do not explain is "other"
FLOW_ROLES = ("compressor", "boiler_fuel", "boiler_output", "production", "load")
NOW_WINDOW = timedelta(minutes=15)  # "intensity now": the last quarter hour, as meters settle it
DAY = timedelta(hours=24)


@dataclass
class Snapshot:
    now: datetime
    site: queries.Site
    roles: dict[str, list[str]]  # meter role → meter ids, to tell "offline" from "no meter"
    overview: kpi.Overview
    series: kpi.PowerSeries
    series_start: datetime
    series_end: datetime
    today: kpi.WindowKpis | None = None        # since local midnight
    last_15m: kpi.WindowKpis | None = None
    last_24h: kpi.WindowKpis | None = None
    flows: dict[str, kpi.RolePower] = field(default_factory=dict)
    intensity: KpiSeries | None = None          # hourly, last 24 h


def load_snapshot(conn: sa.Connection, site_id: str, now: datetime, series_start: datetime,
                  series_end: datetime) -> Snapshot:
    """Site, KPIs at ``now`` and the power series for [series_start, series_end)."""
    site = queries.get_site(conn, site_id)
    roles: dict[str, list[str]] = {}
    for meter in queries.list_meters(conn, site_id):
        if meter.role:
            roles.setdefault(meter.role, []).append(meter.id)
    overview = kpi.site_overview(conn, site_id, now)  # its "today" is window_kpis since local midnight
    series = kpi.power_series(conn, site_id, series_start, series_end, resolution="1m")
    return Snapshot(
        now, site, roles, overview, series, series_start, series_end,
        today=overview.today,
        last_15m=kpi.window_kpis(conn, site_id, now - NOW_WINDOW, now, now),
        last_24h=kpi.window_kpis(conn, site_id, now - DAY, now, now),
        flows=kpi.power_by_role(conn, site_id, FLOW_ROLES, now),
        intensity=kpi_series(conn, site_id, now - DAY, now, "1h", now),
    )
