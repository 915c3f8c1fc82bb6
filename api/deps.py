"""Request-scoped dependencies: one database connection per request."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from lingtan.kernel.db import get_engine
from lingtan.kernel.settings import get_settings


def database_url() -> str:
    url = get_settings().database_url
    if not url:
        raise RuntimeError("LINGTAN_DATABASE_URL is not set")
    return url


def get_conn() -> Iterator[sa.Connection]:
    with get_engine(database_url()).connect() as conn:
        yield conn
