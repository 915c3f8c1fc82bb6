from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query

from api.deps import get_conn
from api.pagination import Page, Paging
from api.problems import Unprocessable
from api.schemas import Point, Series
from lingtan.core import kpi, queries
from lingtan.kernel import clock
from lingtan.kernel.quantities import QUANTITIES

router = APIRouter(tags=["sites"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
Resolution = Literal["raw", "1m", "15m", "1h", "1d"]
# PostgreSQL text cannot hold NUL, so an id with one can match nothing: refuse it up front
# rather than let the database driver fail on it.
NO_NUL = r"^[^\x00]+$"
SiteId = Annotated[str, Path(description="the site's id", pattern=NO_NUL, examples=["demo-plant"])]
MeterId = Annotated[str, Path(description="the meter's id (the gateway's device id)", pattern=NO_NUL,
                              examples=["grid-incomer"])]
Start = Annotated[datetime | None, Query(description="window start, with a time zone",
                                         examples=["2026-11-20T08:00:00+08:00"])]
End = Annotated[datetime | None, Query(description="window end (exclusive), with a time zone; default now",
                                       examples=["2026-11-20T12:00:00+08:00"])]


def _window(start: datetime | None, end: datetime | None, default: timedelta
            ) -> tuple[datetime, datetime]:
    end = end or clock.now()
    try:
        start = start or end - default
    except OverflowError:
        raise Unprocessable("query.end", f"end must be later than {datetime.min + default}") from None
    for name, t in (("start", start), ("end", end)):
        if t.tzinfo is None:
            raise Unprocessable(f"query.{name}", f"{name} needs a time zone, e.g. 2026-11-21T08:00:00+08:00")
    if start >= end:
        raise Unprocessable("query.start", "start must be before end")
    return start, end


@router.get("/sites")
def list_sites(conn: Conn, page: Paging) -> Page[queries.Site]:
    return Page.of(queries.list_sites(conn), page)


@router.get("/sites/{site_id}")
def get_site(site_id: SiteId, conn: Conn) -> queries.Site:
    return queries.get_site(conn, site_id)


@router.get("/sites/{site_id}/meters")
def list_meters(site_id: SiteId, conn: Conn, page: Paging) -> Page[queries.Meter]:
    return Page.of(queries.list_meters(conn, site_id), page)


@router.get("/sites/{site_id}/kpis/now")
def kpis_now(site_id: SiteId, conn: Conn) -> kpi.Overview:
    """Power now, and under `today` every KPI of the site's day so far (local midnight until now):
    the same figures as `GET /sites/{id}/kpis` for that window."""
    return kpi.site_overview(conn, site_id)


@router.get("/sites/{site_id}/power")
def power(
    site_id: SiteId,
    conn: Conn,
    start: Start = None,
    end: End = None,
    resolution: Annotated[Literal["1m", "15m", "1h", "1d"], Query(examples=["15m"])] = "1m",
) -> kpi.PowerSeries:
    """Grid, PV and site-load power averaged per bucket (default: the last 24 h by minute)."""
    a, b = _window(start, end, timedelta(hours=24))
    return kpi.power_series(conn, site_id, a, b, resolution)


@router.get("/meters/{meter_id}/readings", response_model=Series)
def readings(
    meter_id: MeterId,
    conn: Conn,
    quantity: Annotated[str, Query(description="canonical quantity", examples=["active_power"])],
    start: Start = None,
    end: End = None,
    resolution: Annotated[Resolution, Query(examples=["1m"])] = "raw",
    limit: Annotated[int, Query(ge=1, le=100_000, description="most points returned",
                                examples=[1000])] = 10_000,
) -> Series:
    if quantity not in QUANTITIES:
        raise Unprocessable("query.quantity",
                            f"unknown quantity {quantity!r}; known: {', '.join(QUANTITIES)}")
    a, b = _window(start, end, timedelta(hours=1))
    rows = queries.readings_series(conn, meter_id, quantity, a, b, resolution, limit)
    if resolution == "raw":
        points = [Point(time=t, value=v, quality=q) for t, v, _, _, q in rows]
    else:
        points = [Point(time=t, value=v, min=lo, max=hi, count=n) for t, v, lo, hi, n in rows]
    return Series(meter_id=meter_id, quantity=quantity, unit=QUANTITIES[quantity].unit,
                  resolution=resolution, points=points)
