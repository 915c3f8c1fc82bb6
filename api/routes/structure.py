"""The metering structure over HTTP: the tree and its virtual meters, and the figures per node.

Reads need a viewer key, the structure's replacement an engineer key. A structure is replaced
whole and checked whole; a refused one leaves the stored one as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.auth import Engineer, Viewer
from api.deps import get_conn
from api.problems import Unprocessable
from api.routes.kpis import DateQ, EndQ, PeriodQ, StartQ, WindowQ, computed, series_window
from lingtan.core import series
from lingtan.core.carbon import ConversionError
from lingtan.core.factors import FactorError
from lingtan.core.structure import load_structure, save_structure
from lingtan.core.structure_kpis import StructureKpis, structure_kpis
from lingtan.core.structure_schema import Structure, StructureError
from lingtan.core.structure_series import NodeSeries, node_series
from lingtan.kernel import clock

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
    window: WindowQ = None, period: PeriodQ = None, date_: DateQ = None,
    start: StartQ = None, end: EndQ = None,
) -> StructureKpis:
    """The whole tree with, per node: energy per carrier, tce, tCO2e (location and market), cost per
    time-of-use band, maximum 15-minute demand and when, per unit of product, per m² and per person,
    unmetered energy (own meters − Σ children) and the share sub-meters account for. Every figure
    carries its coverage. Window parameters as for `/kpis`."""
    return computed(conn, site_id, window, period, date_, start, end, structure_kpis)


@router.get("/sites/{site_id}/structure/nodes/{node_id}/series", summary="One node's energy per bucket")
def get_node_series(
    site_id: SiteId, node_id: SiteId, conn: Conn,
    start: Annotated[datetime, Query(examples=["2026-11-01T00:00:00+08:00"])],
    end: Annotated[datetime | None, Query(description="default now", examples=["2026-12-01T00:00:00+08:00"])]
    = None,
    resolution: Annotated[series.Resolution, Query(
        description="bucket: 15m, 1h, 1d (local days) or 1mo (local months)", examples=["1d"])] = "1d",
) -> NodeSeries:
    """The node's energy per carrier in each bucket (null where no meter reported), electricity's
    location-based tCO2e at the site's carbon per kWh of the bucket, and coverage. Buckets as for
    `/kpis/series`."""
    a, b = series_window(start, end, resolution)
    try:
        return node_series(conn, site_id, node_id, a, b, resolution, clock.now())
    except (ConversionError, FactorError) as exc:
        raise Unprocessable("query.start", str(exc)) from None
