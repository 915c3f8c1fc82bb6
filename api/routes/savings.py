"""Energy baselines, EnPIs and measured savings over HTTP. Reads need a viewer key, replacing the
baselines and projects an engineer key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query

from api.auth import Engineer, Viewer
from api.deps import get_conn
from api.problems import Unprocessable
from lingtan.core import savings_service
from lingtan.core.savings_schema import Savings, SavingsError
from lingtan.kernel import clock

router = APIRouter(tags=["savings"])
Conn = Annotated[sa.Connection, Depends(get_conn)]
SiteId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
ItemId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


@contextmanager
def _answerable() -> Iterator[None]:
    try:
        yield
    except SavingsError as exc:
        raise Unprocessable(".".join(map(str, exc.loc)), exc.message) from None


@router.get("/sites/{site_id}/savings", response_model=Savings, summary="The site's baselines and projects")
def get_savings(site_id: SiteId, conn: Conn, _: Viewer) -> Savings:
    """The site file's `energy_baselines` and `projects`."""
    return savings_service.load_savings(conn, site_id)


@router.put("/sites/{site_id}/savings", response_model=Savings, summary="Replace the baselines and projects")
def put_savings(site_id: SiteId, body: Savings, conn: Conn, key: Engineer) -> Savings:
    """The whole document. Refused, with the field named, when a meter or node is not the site's or a
    variable names a source the site lacks."""
    try:
        savings_service.save_savings(conn, site_id, body, f"API key {key.name}", clock.now())
    except SavingsError as exc:
        raise HTTPException(422, f"{'.'.join(str(p) for p in ('body', *exc.loc))}: {exc.message}") from None
    conn.commit()
    return savings_service.load_savings(conn, site_id)


@router.get("/sites/{site_id}/baselines/{baseline_id}",
            summary="An energy baseline, its fit and the EnPI since")
def get_baseline(site_id: SiteId, baseline_id: ItemId, conn: Conn, _: Viewer
                 ) -> savings_service.BaselineAnswer:
    """The regression of the boundary's energy on the variables over the baseline period: coefficients
    with standard errors, t and p, R², CV(RMSE), NMBE and every adequacy rule with its source; then,
    if the model is adequate, actual against expected for every later point, the CUSUM and the ratio
    EnPI."""
    with _answerable():
        return savings_service.baseline(conn, site_id, baseline_id, clock.now())


@router.get("/sites/{site_id}/projects", summary="The site's retrofit projects")
def get_projects(site_id: SiteId, conn: Conn, _: Viewer) -> list[savings_service.ProjectSummary]:
    return savings_service.projects(conn, site_id)


@router.get("/sites/{site_id}/projects/{project_id}/savings", summary="A project's measured savings")
def get_project_savings(
    site_id: SiteId, project_id: ItemId, conn: Conn, _: Viewer,
    period: Annotated[Literal["all", "year", "month"], Query(description=(
        "all: the whole reporting period to date; year or month: its part in the one holding `date`"
    ))] = "all",
    date_: Annotated[date | None, Query(alias="date", description="a day in the year or month; default today",
                                        examples=["2026-11-15"])] = None,
) -> savings_service.ProjectSavings:
    """Avoided energy = adjusted baseline − reporting-period energy (IPMVP), with its uncertainty at the
    project's confidence level (ASHRAE Guideline 14), in tce, tCO2e (location and market) and CNY with
    the factors and price of the period, beside the claimed savings; per point, the CUSUM."""
    with _answerable():
        return savings_service.project_savings(conn, site_id, project_id, clock.now(), period, date_)
