from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from api.deps import database_url
from api.schemas import Health
from lingtan import __version__
from lingtan.kernel.db import get_engine

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    try:
        with get_engine(database_url()).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        db = "ok"
    except Exception:
        db = "unreachable"
    return Health(status="ok" if db == "ok" else "degraded", database=db, version=__version__)
