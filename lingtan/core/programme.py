"""The stored zero-carbon programme of a site: read, checked against the site, written whole."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from lingtan.core import documents, queries
from lingtan.core.programme_figures import FigureError, entered_kpis
from lingtan.core.programme_schema import ProgrammeError, ZeroCarbonProgramme, check_programme
from lingtan.core.site_model import list_purchases, load_site_model


def stored_programme(conn: sa.Connection, site_id: str) -> ZeroCarbonProgramme | None:
    doc = documents.read(conn, "site_programmes", site_id)
    return ZeroCarbonProgramme.model_validate(doc) if doc is not None else None


def load_programme(conn: sa.Connection, site_id: str) -> ZeroCarbonProgramme:
    """The site's programme (empty when none is set); ``queries.NotFound`` for an unknown site."""
    queries.get_site(conn, site_id)
    return stored_programme(conn, site_id) or ZeroCarbonProgramme()


def check_against_site(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme) -> None:
    """What needs the site: green-power references (a certificate is never also an offset) and
    factors for every entered year. Raises ``ProgrammeError`` with a loc from the top of the file."""
    check_programme(z, list(list_purchases(conn, site_id)))
    model = load_site_model(conn, site_id)
    for i, h in enumerate(z.programme.history):
        try:
            entered_kpis(model, h, ("programme", "history", i))
        except FigureError as exc:
            raise ProgrammeError(exc.loc, exc.message) from None


def save_programme(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, by: str, now: datetime) -> bool:
    """Check ``z`` and store it whole; True if it changed. Runs in the caller's transaction (after
    the site's green power and factor overrides are written); a refused programme writes nothing."""
    queries.get_site(conn, site_id)
    check_against_site(conn, site_id, z)
    doc = z.model_dump_json(exclude_defaults=True)
    return documents.store(conn, "site_programmes", site_id, doc, by, now)
