"""The FastAPI application under /api/v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import problems
from api.auth import require
from api.routes import (
    alerts,
    carbon,
    gateways,
    health,
    keys,
    kpis,
    periods,
    programme,
    reports,
    savings,
    site_model,
    sites,
    structure,
)
from lingtan import __version__
from lingtan.kernel.settings import get_settings

PREFIX = "/api/v1"

TAGS = [
    {"name": "health", "description": "Liveness and database reachability. The only route without a key."},
    {"name": "sites", "description": "Sites, their meters, live KPIs and reading series."},
    {"name": "kpis", "description": (
        "Site KPIs for rolling windows, calendar periods and explicit windows, and KPI time series. "
        "Every figure carries its coverage; every factor its source.")},
    {"name": "reports", "description": (
        "Monthly and annual GHG inventory, energy balance and green-factory indicators; JSON, CSV or XLSX.")},
    {"name": "periods", "description": (
        "Closed periods: a month or year closed (engineer) keeps its figures; its reports show them, "
        "with a restatement when the figures recomputed now differ. Reopening needs admin.")},
    {"name": "site model", "description": (
        "A site's energy model: region and factor set, boiler and gas parameters, tariff, meter roles "
        "and nameplates, green-power purchases and the site's own factors. Writes need engineer.")},
    {"name": "metering structure", "description": (
        "The site's metering tree (departments, workshops, lines, equipment), virtual meters, and "
        "energy, carbon, cost, demand and unmetered energy per node. Writes need engineer.")},
    {"name": "zero-carbon programme", "description": (
        "Base year and entered history, targets with trajectory and projection, the offset register "
        "and the net balance, and the evaluations (zero-carbon factory, green factory, cloud-model "
        "grade). Writes need engineer.")},
    {"name": "savings", "description": (
        "Energy baselines and EnPIs (regression on production, degree days and named variables, with "
        "adequacy rules), CUSUM, and retrofit projects' measured savings with their uncertainty "
        "(IPMVP options B and C). Writes need engineer.")},
    {"name": "gateways", "description": "Field gateways: last heartbeat, per-device health, online state."},
    {"name": "carbon", "description": "Emission and standard-coal factors and the unit/carbon calculator."},
    {"name": "keys", "description": "API keys (admin role): list, create, revoke."},
    {"name": "alerts", "description": (
        "Alert rules (threshold, offline, compressor specific power, budget), their states, history, "
        "acknowledgements and silences. Rule changes need engineer.")},
]

DESCRIPTION = """Energy metering, KPIs and carbon figures for factories.

Every route except `GET /api/v1/health` needs an API key: `Authorization: Bearer lt_…`
(make one with `lingtan keys create --role viewer`). `viewer` reads, `engineer` also changes
devices, sites and rules, `admin` also manages keys. Errors are RFC 9457 problem details
(`application/problem+json`).
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Background work of each API process.

    The alert scheduler runs in every process; an advisory lock lets exactly one evaluate.

    The rollup refresher runs in every process too, not only in the alert leader: the API sits
    next to the database, so a single-site install (gateway → PostgreSQL, API, dashboard) gets
    rollups with nothing more to run, and a deployment with several API processes keeps them
    current as long as any one of them lives. No leader is needed: ``rollups.refresh_dirty``
    makes refreshes take turns on their own advisory lock, and an idle one holds nothing. Tying
    it to the alert lock would stop rollups wherever alerts are switched off.
    """
    settings = get_settings()
    scheduler = None
    refresher = None
    if settings.alerts_scheduler and settings.database_url:
        from api.scheduler import AlertScheduler

        scheduler = AlertScheduler(settings)
        scheduler.start()
    if settings.rollups_refresher and settings.database_url:
        from lingtan.core.rollup_worker import RollupWorker

        refresher = RollupWorker(settings.database_url, every=settings.rollups_every_seconds)
        refresher.start()
    try:
        yield
    finally:
        if refresher is not None:
            refresher.stop()
        if scheduler is not None:
            scheduler.stop()


def create_app() -> FastAPI:
    app = FastAPI(title="Lingtan API", version=__version__, openapi_url="/openapi.json",
                  description=DESCRIPTION, openapi_tags=TAGS, lifespan=_lifespan)
    viewer = [Depends(require("viewer"))]
    app.include_router(health.router, prefix=PREFIX)
    for router in (sites.router, kpis.router, reports.router, periods.router, gateways.router,
                   carbon.router, site_model.router, structure.router, programme.router,
                   savings.router, alerts.router):
        app.include_router(router, prefix=PREFIX, dependencies=viewer, responses=problems.PROTECTED)
    app.include_router(keys.router, prefix=PREFIX, dependencies=[Depends(require("admin"))],
                       responses=problems.PROTECTED)
    problems.install(app)
    _problem_openapi(app)

    origins = get_settings().cors_origins
    if origins:
        # Keys travel in the Authorization header, never in cookies, so no credentials mode.
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])
    return app


def _problem_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.problem_media_type(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
