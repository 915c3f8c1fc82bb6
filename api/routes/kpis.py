"""Site KPIs for rolling windows, calendar periods and explicit windows; KPI time series."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query

from api.deps import get_conn
from api.problems import Unprocessable
from lingtan.core import queries, series
from lingtan.core.carbon import ConversionError
from lingtan.core.factors import FactorError
from lingtan.core.kpi import WindowKpis, window_kpis
from lingtan.kernel import clock, periods

router = APIRouter(tags=["kpis"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
SiteId = Annotated[str, Path(description="the site's id", examples=["demo-plant"])]
T = TypeVar("T")
# The window parameters every KPI route takes: one of a rolling window, a calendar period, or start/end.
WindowQ = Annotated[periods.Rolling | None, Query(description="rolling window ending at `end` (or now)",
                                                  examples=["24h"])]
PeriodQ = Annotated[periods.Calendar | None, Query(description="calendar period in the site's time zone",
                                                   examples=["month"])]
DateQ = Annotated[date | None, Query(alias="date", description="a day inside the period; default today",
                                     examples=["2026-11-21"])]
StartQ = Annotated[datetime | None, Query(examples=["2026-11-01T00:00:00+08:00"])]
EndQ = Annotated[datetime | None, Query(examples=["2026-11-21T00:00:00+08:00"])]
MAX_SERIES_POINTS = 40_000  # a year of 15-minute buckets is 35 040


def _aware(name: str, t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is None:
        raise Unprocessable(f"query.{name}", "needs a time zone, e.g. 2026-11-21T08:00:00+08:00")
    return t


def resolve_window(site_tz: str, window: str | None, period: str | None, day: date | None,
                   start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """One of: a rolling window ending at ``end`` (default now), a calendar period, or start/end."""
    chosen = [n for n, v in (("window", window), ("period", period), ("start", start)) if v is not None]
    if len(chosen) > 1:
        raise Unprocessable(f"query.{chosen[1]}", f"give one of window, period or start/end, not {chosen}")
    if period is not None:
        local_today = now.astimezone(ZoneInfo(site_tz)).date()
        return periods.calendar(period, day or local_today, site_tz)
    if day is not None:
        raise Unprocessable("query.date", "date goes with period=day|month|year")
    end = _aware("end", end) or now
    if start is not None:
        start = _aware("start", start)
        assert start is not None
        if start >= end:
            raise Unprocessable("query.start", "start must be before end")
        if end - start > timedelta(days=3 * 366):
            raise Unprocessable("query.start", "a window is at most three years")
        return start, end
    return periods.rolling(window or "24h", end)


@router.get("/sites/{site_id}/kpis", summary="KPIs for a window or calendar period")
def kpis(
    site_id: SiteId,
    conn: Conn,
    window: WindowQ = None, period: PeriodQ = None, date_: DateQ = None,
    start: StartQ = None, end: EndQ = None,
) -> WindowKpis:
    """Electricity balance, green-power ratio, Scope 1 and 2 (location and market), intensity,
    standard coal, waste-heat savings, compressors and boilers.

    Every figure carries `coverage` (0–1: the share of the window with meter data behind it);
    a gap is never counted as zero. Every factor used is listed with its source. Default: the
    last 24 hours.
    """
    return computed(conn, site_id, window, period, date_, start, end, window_kpis)


def computed(conn: sa.Connection, site_id: str, window: str | None, period: str | None, day: date | None,
             start: datetime | None, end: datetime | None,
             engine: Callable[[sa.Connection, str, datetime, datetime, datetime], T]) -> T:
    """``engine`` for the window the query parameters give, with the query's field named in an error."""
    site = queries.get_site(conn, site_id)
    now = clock.now()
    try:
        a, b = resolve_window(site.timezone, window, period, day, start, end, now)
    except periods.PeriodError as exc:
        raise Unprocessable(f"query.{exc.field}", str(exc)) from None
    try:
        return engine(conn, site_id, a, b, now)
    except (ConversionError, FactorError) as exc:
        raise Unprocessable("query.start" if start is not None else "query.end", str(exc)) from None


@router.get("/sites/{site_id}/kpis/series", summary="KPI time series")
def kpi_series(
    site_id: SiteId,
    conn: Conn,
    start: Annotated[datetime, Query(examples=["2026-11-14T00:00:00+08:00"])],
    end: Annotated[datetime | None, Query(description="default now", examples=["2026-11-21T00:00:00+08:00"])]
    = None,
    resolution: Annotated[series.Resolution, Query(
        description="bucket: 15m, 1h, 1d (local days) or 1mo (local months)", examples=["1h"])] = "1h",
) -> series.KpiSeries:
    """Energy, green power, carbon and intensity per bucket; a bucket without data has null figures."""
    queries.get_site(conn, site_id)
    a, b = series_window(start, end, resolution)
    try:
        return series.kpi_series(conn, site_id, a, b, resolution, clock.now())
    except (ConversionError, FactorError) as exc:
        raise Unprocessable("query.start", str(exc)) from None


def series_window(start: datetime, end: datetime | None, resolution: str) -> tuple[datetime, datetime]:
    """[start, end) of a series request (end defaults to now), refused with the field named when it
    is backwards or would have too many points."""
    a = _aware("start", start)
    b = _aware("end", end) or clock.now()
    assert a is not None
    if a >= b:
        raise Unprocessable("query.start", "start must be before end")
    width = series.WIDTH.get(resolution, timedelta(days=28))
    if (b - a) / width > MAX_SERIES_POINTS:
        raise Unprocessable("query.resolution", f"more than {MAX_SERIES_POINTS} points: choose a coarser "
                                                "resolution or a shorter window")
    return a, b
