"""The FastAPI application under /api/v1."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.routes import carbon, gateways, health, sites
from api.services.queries import NotFound
from lingtan import __version__


def create_app() -> FastAPI:
    app = FastAPI(title="Lingtan API", version=__version__, openapi_url="/openapi.json")
    app.include_router(health.router, prefix="/api/v1")
    app.include_router(sites.router, prefix="/api/v1")
    app.include_router(gateways.router, prefix="/api/v1")
    app.include_router(carbon.router, prefix="/api/v1")

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(
            {"type": "about:blank", "title": "Not Found", "status": 404, "detail": str(exc)},
            status_code=404, media_type="application/problem+json",
        )

    return app
