"""The zero-carbon programme over HTTP: the programme document, targets, the net balance and the
evaluations. Reads need a viewer key, replacing the programme an engineer key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.auth import Engineer, Viewer
from api.deps import get_conn
from api.problems import Unprocessable
from lingtan.core import programme_report, programme_service, report_formats
from lingtan.core.carbon import ConversionError
from lingtan.core.evaluations import Evaluations
from lingtan.core.neutrality import NetBalance
from lingtan.core.programme import load_programme, save_programme
from lingtan.core.programme_figures import FigureError
from lingtan.core.programme_schema import ProgrammeError, ZeroCarbonProgramme
from lingtan.core.targets import TargetStatus
from lingtan.kernel import clock
from lingtan.kernel.i18n import Lang

router = APIRouter(tags=["zero-carbon programme"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
SiteId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
YearDateQ = Annotated[date, Query(alias="date", description="a day inside the year (site-local)",
                                  examples=["2025-06-30"])]


class Targets(BaseModel):
    site_id: str
    base_year: int | None
    targets: list[TargetStatus]


@router.get("/sites/{site_id}/programme", response_model=ZeroCarbonProgramme,
            summary="The site's zero-carbon programme")
def get_programme(site_id: SiteId, conn: Conn, _: Viewer) -> ZeroCarbonProgramme:
    """Base year and entered history, output value, targets, the offset register and the inputs of
    the evaluations — the site file's `programme`, `targets`, `offsets` and `evaluations`."""
    return load_programme(conn, site_id)


@router.put("/sites/{site_id}/programme", response_model=ZeroCarbonProgramme,
            summary="Replace the zero-carbon programme")
def put_programme(site_id: SiteId, body: ZeroCarbonProgramme, conn: Conn, key: Engineer
                  ) -> ZeroCarbonProgramme:
    """The whole programme. Refused, with the field named, when a target has no base year, an entered
    year has no factor, a credit's serials are claimed twice or an instrument is entered as an offset."""
    try:
        save_programme(conn, site_id, body, f"API key {key.name}", clock.now())
    except ProgrammeError as exc:
        raise HTTPException(422, f"{'.'.join(str(p) for p in ('body', *exc.loc))}: {exc.message}") from None
    conn.commit()
    return load_programme(conn, site_id)


@router.get("/sites/{site_id}/targets",
            summary="Every target: base, latest year, trajectory, projection, status")
def get_targets(site_id: SiteId, conn: Conn, _: Viewer) -> Targets:
    """Per target: the base year's value, the latest complete year (closed, entered or provisional), the
    year to date, the straight-line trajectory, the projection to the target year from the last 12
    months, and on track / at risk / off track with the reason (docs/domain.md)."""
    with _answerable():
        z, statuses = programme_service.targets(conn, site_id, clock.now())
    return Targets(site_id=site_id, base_year=z.programme.base_year, targets=statuses)


@router.get("/sites/{site_id}/neutrality", summary="Net balance of a year: gross, instruments, offsets, net")
def get_neutrality(site_id: SiteId, conn: Conn, _: Viewer, date_: YearDateQ,
                   period: Annotated[Literal["year"], Query(description=(
                       "offsets are claimed per calendar year"))] = "year") -> NetBalance:
    """Gross Scope 1 + 2 (market-based, or location-based under that rule), the green instruments
    applied, the offsets retired for the year, the net, and whether the year is carbon-neutral under
    the site's rule (named)."""
    with _answerable("query.date"):
        return programme_service.neutrality(conn, site_id, date_.year, clock.now())


@router.get("/sites/{site_id}/evaluations",
            summary="Zero-carbon factory, green factory and cloud-model grade")
def get_evaluations(site_id: SiteId, conn: Conn, _: Viewer,
                    year: Annotated[int, Query(ge=1990, le=2199, description="the calendar year evaluated",
                                               examples=[2025])]) -> Evaluations:
    """The zero-carbon factory requirements computed from the year's data (renewable electricity share,
    offset share of the residual, carbon per tce) against each level's thresholds with their sources,
    the level reached and what blocks the next; the green factory indicators scored between baseline
    and leading values; the cloud-model grade of the last months with the indicator weights; and the
    checklists as entered."""
    with _answerable("query.year"):
        return programme_service.evaluate(conn, site_id, year, clock.now())


ReportFormat = Literal["json", "xlsx", "pdf"]
REPORT_DOWNLOADS: dict[int | str, dict[str, Any]] = {200: {
    "description": "the report; `format=xlsx` or `format=pdf` sends it as an attachment",
    "content": {report_formats.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
                report_formats.PDF_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}}


@router.get("/sites/{site_id}/reports/zero-carbon", responses=REPORT_DOWNLOADS,
            summary="Annual zero-carbon report (XLSX or PDF)")
def get_zero_carbon_report(
    site_id: SiteId, conn: Conn, _: Viewer,
    year: Annotated[int, Query(ge=1990, le=2199, description="the calendar year reported", examples=[2025])],
    fmt: Annotated[ReportFormat, Query(alias="format", description=(
        "xlsx or pdf; json: the sections' tables"))] = "pdf",
    lang: Annotated[Lang, Query(description="the language of the PDF's words: zh or en")] = "zh",
) -> Any:
    """The year's inventory, targets with trajectories and projections, green instruments, offsets, the
    net balance under the site's rule, and the evaluations (zero-carbon factory, green factory, cloud
    model) with their checklists and every factor's source. The numbers are the other routes' answers
    for the same year."""
    with _answerable("query.year"):
        report = programme_report.zero_carbon_report(conn, site_id, year, clock.now())
    tables = programme_report.report_tables(report)
    if fmt == "json":
        return [{"name": t.name, "columns": [c.header for c in t.columns],
                 "rows": [[c.value if isinstance(c, report_formats.Num) else c for c in row]
                          for row in t.rows]}
                for t in tables]
    head, sub = programme_report.title(report, lang)
    body, media_type = report_formats.render(tables, fmt, title=head, subtitle=sub, lang=lang)
    name = report_formats.filename(site_id, "zero-carbon", str(year), fmt)
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@contextmanager
def _answerable(field: str = "query") -> Iterator[None]:
    """``field``: the request field a period without factors is about (the library starts at 2021)."""
    try:
        yield
    except (ProgrammeError, FigureError) as exc:
        raise Unprocessable(".".join(map(str, exc.loc)), exc.message) from None
    except ConversionError as exc:
        raise Unprocessable(field, str(exc)) from None
