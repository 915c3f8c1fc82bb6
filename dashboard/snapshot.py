"""Everything one Overview refresh needs, read through the API's public service functions: the
same KPI engine as ``GET /sites/{id}/kpis``, so a tile and the API agree for the same window."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from lingtan.core import amounts, kpi, queries
from lingtan.core.series import KpiSeries, kpi_series
from lingtan.core.site_model import load_site_model

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
    """Site, KPIs at ``now`` and the power series for [series_start, series_end).

    Every figure comes from the same service functions as the API, but the reads they share are
    made once and passed down: the site model, the meters' newest power (flows, power now, offline
    meters) and the counter reads, which the three windows and the intensity series' green-purchase
    periods take from one batch (amounts.Counters)."""
    model = load_site_model(conn, site_id)
    power = kpi.site_power(conn, site_id)
    counters = amounts.Counters(conn)
    midnight = kpi.local_midnight(now, model.site.timezone)
    today, last_15m, last_24h = kpi.window_kpis_many(
        conn, site_id, [(midnight, now), (now - NOW_WINDOW, now), (now - DAY, now)], now,
        model=model, counters=counters)
    return Snapshot(
        now, model.site, power.roles,
        overview=kpi.site_overview(conn, site_id, now, model=model, power=power, today=today),
        series=kpi.power_series(conn, site_id, series_start, series_end, resolution="1m", model=model),
        series_start=series_start, series_end=series_end,
        today=today, last_15m=last_15m, last_24h=last_24h,
        flows=kpi.power_by_role(conn, site_id, FLOW_ROLES, now, power=power),
        intensity=kpi_series(conn, site_id, now - DAY, now, "1h", now, model=model, counters=counters),
    )
