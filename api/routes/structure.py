"""The metering structure over HTTP: the tree and its virtual meters, and the figures per node.

Reads need a viewer key, the structure's replacement an engineer key. A structure is replaced
whole and checked whole; a refused one leaves the stored one as it was.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.auth import Engineer, Viewer
from api.deps import get_conn
from api.problems import Unprocessable
from api.routes.kpis import resolve_window
from lingtan.core import queries
from lingtan.core.carbon import ConversionError
from lingtan.core.factors import FactorError
from lingtan.core.structure import load_structure, save_structure
from lingtan.core.structure_kpis import StructureKpis, structure_kpis
from lingtan.core.structure_schema import Structure, StructureError
from lingtan.kernel import clock, periods

router = APIRouter(tags=["metering structure"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
SiteId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.get("/sites/{site_id}/structure", response_model=Structure, response_model_exclude_defaults=False,
            summary="The site's metering structure")
def get_structure(site_id: SiteId, conn: Conn, _: Viewer) -> Structure:
    """Nodes (site → areas/departments/workshops → lines → equipment), their meters per carrier with
    signs, virtual meters, end uses, the unmetered threshold and the internal carbon price."""
    return load_structure(conn, site_id)


@router.put("/sites/{site_id}/structure", response_model=Structure, summary="Replace the metering structure")
def put_structure(site_id: SiteId, body: Structure, conn: Conn, key: Engineer) -> Structure:
    """The whole structure. Refused, with the field named, when a node's parent is missing or makes a
    cycle, a meter is not the site's, a meter would be counted twice with one sign, or a formula does
    not parse."""
    try:
        save_structure(conn, site_id, body, f"API key {key.name}", clock.now())
    except StructureError as exc:
        field = ".".join(str(p) for p in ("body", *exc.loc))
        raise HTTPException(422, f"{field}: {exc.message}") from None
    conn.commit()
    return load_structure(conn, site_id)


@router.get("/sites/{site_id}/structure/kpis", summary="Figures per node of the metering structure")
def get_structure_kpis(
    site_id: SiteId,
    conn: Conn,
    window: Annotated[periods.Rolling | None, Query(description="rolling window ending at `end` (or now)")]
    = None,
    period: Annotated[periods.Calendar | None, Query(description="calendar period in the site's time zone",
                                                     examples=["month"])] = None,
    date_: Annotated[date | None, Query(alias="date", description="a day inside the period; default today",
                                        examples=["2026-11-21"])] = None,
    start: Annotated[datetime | None, Query(examples=["2026-11-01T00:00:00+08:00"])] = None,
    end: Annotated[datetime | None, Query(examples=["2026-11-21T00:00:00+08:00"])] = None,
) -> StructureKpis:
    """The whole tree with, per node: energy per carrier, tce, tCO2e (location and market), cost per
    time-of-use band, maximum 15-minute demand and when, per unit of product, per m² and per person,
    unmetered energy (own meters − Σ children) and the share sub-meters account for. Every figure
    carries its coverage. Window parameters as for `/kpis`."""
    site = queries.get_site(conn, site_id)
    now = clock.now()
    try:
        a, b = resolve_window(site.timezone, window, period, date_, start, end, now)
    except periods.PeriodError as exc:
        raise Unprocessable(f"query.{exc.field}", str(exc)) from None
    try:
        return structure_kpis(conn, site_id, a, b, now)
    except (ConversionError, FactorError) as exc:
        raise Unprocessable("query.start" if start is not None else "query.end", str(exc)) from None
