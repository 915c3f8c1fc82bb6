"""Closed periods: close a month or year, list a site's periods, read a closing and its restatement.

Reads need a viewer key, closing an engineer key, reopening an admin key. Each write commits on
success; on any error the request's connection closes uncommitted.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from api import problems
from api.auth import Admin, Engineer
from api.deps import get_conn
from api.pagination import Page, Paging
from api.problems import Unprocessable
from lingtan.core import closings
from lingtan.core.carbon import ConversionError
from lingtan.core.factors import FactorError
from lingtan.core.keys import ApiKey
from lingtan.kernel import clock, periods

router = APIRouter(tags=["periods"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
SiteId = Annotated[str, Path(description="the site's id", examples=["demo-plant"])]
PeriodP = Annotated[closings.Period, Path(description="calendar month or year in the site's time zone",
                                          examples=["month"])]
DateP = Annotated[date, Path(description="a day inside the period, usually its first",
                             examples=["2026-11-01"])]


class CloseBody(BaseModel):
    note: str = Field("", max_length=closings.MAX_NOTE, description="kept with the closing",
                      examples=["November signed off for the group report"])


class ReopenBody(BaseModel):
    reason: str = Field(min_length=1, max_length=closings.MAX_NOTE, description="kept in the history",
                        examples=["meter grid-incomer replaced; its November readings were re-imported"])


def _by(key: ApiKey) -> str:
    return f"key:{key.prefix} {key.name}".strip()


def _conflict(exc: closings.PeriodStateError) -> HTTPException:
    return HTTPException(409, str(exc))


def _bad_period(exc: Exception) -> Unprocessable:
    if isinstance(exc, periods.PeriodError):
        return Unprocessable(f"path.{exc.field}", str(exc))
    # No factor valid for the period (e.g. before the oldest MEE data year).
    return Unprocessable("path.date", str(exc))


@router.get("/sites/{site_id}/periods", summary="A site's months or years with their status")
def list_periods(
    site_id: SiteId, conn: Conn, page: Paging,
    period: Annotated[closings.Period, Query(description="list months or years", examples=["month"])]
    = "month",
) -> Page[closings.PeriodSummary]:
    """Newest first, from the site's first data to the period running now: each `running`,
    `open` (ended, figures provisional) or `closed`, with the closing in force and how many
    earlier closings were reopened."""
    return Page.of(closings.list_periods(conn, site_id, period, clock.now()), page)


@router.get("/sites/{site_id}/periods/{period}/{date}", summary="A period: closed figures and restatement")
def get_period(site_id: SiteId, period: PeriodP, date: DateP, conn: Conn) -> closings.PeriodDetail:
    """For a closed period: the KPI figures as closed, the factors used with their sources, the
    coverage of each figure, and a `restatement` — every figure recomputed now beside the closed
    one, `differs` when the two differ beyond float noise, with the reason where it is known
    (later data arrived, a factor changed, green-power purchases changed). Every closing of the
    period, reopened ones included, is in `history`."""
    try:
        return closings.period_detail(conn, site_id, period, date, clock.now())
    except (periods.PeriodError, ConversionError, FactorError) as exc:
        raise _bad_period(exc) from None


@router.post("/sites/{site_id}/periods/{period}/{date}/close", status_code=201,
             summary="Close a month or year", responses=problems.responses(409))
def close_period(
    site_id: SiteId, period: PeriodP, date: DateP, conn: Conn, key: Engineer,
    body: Annotated[CloseBody | None, Body()] = None,
) -> closings.PeriodDetail:
    """Store the period's figures as they stand now — the KPIs, the GHG inventory and the energy
    balance, the factors used with their sources, the coverage, who closed it and when — so that
    its reports no longer change with late data or new factors. Only a period that has ended
    (at midnight in the site's time zone) can be closed, and only once (409); an admin can
    reopen it."""
    try:
        detail = closings.close_period(conn, site_id, period, date, _by(key), body.note if body else "",
                                       clock.now())
    except closings.PeriodStateError as exc:
        raise _conflict(exc) from None
    except (periods.PeriodError, ConversionError, FactorError) as exc:
        raise _bad_period(exc) from None
    conn.commit()
    return detail


@router.post("/sites/{site_id}/periods/{period}/{date}/reopen", summary="Reopen a closed period (admin)",
             responses=problems.responses(409))
def reopen_period(site_id: SiteId, period: PeriodP, date: DateP, body: ReopenBody, conn: Conn,
                  key: Admin) -> closings.PeriodDetail:
    """Take the closing out of force, so the reports are provisional again and the period can be
    closed anew. The closing is never deleted: it stays in the history with who reopened it,
    when and why. 409 if the period is not closed."""
    try:
        detail = closings.reopen_period(conn, site_id, period, date, _by(key), body.reason, clock.now())
    except closings.PeriodStateError as exc:
        raise _conflict(exc) from None
    except ValueError as exc:
        if isinstance(exc, periods.PeriodError):
            raise _bad_period(exc) from None
        raise Unprocessable("body.reason", str(exc)) from None
    conn.commit()
    return detail
