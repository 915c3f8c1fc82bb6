from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query

from api.deps import get_conn
from api.schemas import Point, Series
from api.services import kpi, queries
from lingtan.quantities import QUANTITIES

router = APIRouter(tags=["sites"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
Resolution = Literal["raw", "1m", "15m", "1h", "1d"]


def _window(start: datetime | None, end: datetime | None, default: timedelta
            ) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    start = start or end - default
    for name, t in (("start", start), ("end", end)):
        if t.tzinfo is None:
            raise HTTPException(422, f"{name} needs a time zone, e.g. 2026-11-21T08:00:00+08:00")
    if start >= end:
        raise HTTPException(422, "start must be before end")
    return start, end


@router.get("/sites")
def list_sites(conn: Conn) -> list[queries.Site]:
    return queries.list_sites(conn)


@router.get("/sites/{site_id}")
def get_site(site_id: str, conn: Conn) -> queries.Site:
    return queries.get_site(conn, site_id)


@router.get("/sites/{site_id}/meters")
def list_meters(site_id: str, conn: Conn) -> list[queries.Meter]:
    return queries.list_meters(conn, site_id)


@router.get("/sites/{site_id}/kpis/now")
def kpis_now(site_id: str, conn: Conn) -> kpi.Overview:
    """Power now, and energy, carbon and green-power ratio since local midnight."""
    return kpi.site_overview(conn, site_id)


@router.get("/sites/{site_id}/power")
def power(
    site_id: str,
    conn: Conn,
    start: datetime | None = None,
    end: datetime | None = None,
    resolution: Literal["1m", "15m", "1h", "1d"] = "1m",
) -> kpi.PowerSeries:
    """Grid, PV and site-load power averaged per bucket (default: the last 24 h by minute)."""
    a, b = _window(start, end, timedelta(hours=24))
    return kpi.power_series(conn, site_id, a, b, resolution)


@router.get("/meters/{meter_id}/readings", response_model=Series)
def readings(
    meter_id: str,
    conn: Conn,
    quantity: Annotated[str, Query(description="canonical quantity, e.g. active_power")],
    start: datetime | None = None,
    end: datetime | None = None,
    resolution: Resolution = "raw",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Series:
    if quantity not in QUANTITIES:
        raise HTTPException(422, f"unknown quantity {quantity!r}; known: {', '.join(QUANTITIES)}")
    a, b = _window(start, end, timedelta(hours=1))
    rows = queries.readings_series(conn, meter_id, quantity, a, b, resolution, limit)
    if resolution == "raw":
        points = [Point(time=t, value=v, quality=q) for t, v, _, _, q in rows]
    else:
        points = [Point(time=t, value=v, min=lo, max=hi, count=n) for t, v, lo, hi, n in rows]
    return Series(meter_id=meter_id, quantity=quantity, unit=QUANTITIES[quantity].unit,
                  resolution=resolution, points=points)
