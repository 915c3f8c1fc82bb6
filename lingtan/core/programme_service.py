"""What the apps ask of the zero-carbon programme, each answer from the one engine: the routes,
the dashboard page, the alert rule and the report call these and nothing else.

Errors: ``ProgrammeError`` (a request the programme cannot answer, e.g. a year not begun) and
``programme_figures.FigureError`` (a stored entered year that can no longer be computed, e.g. the
factor override it relied on was removed), both with the field they are about.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from lingtan.core import programme_figures as pf
from lingtan.core.evaluations import Evaluations, evaluations
from lingtan.core.neutrality import NetBalance, net_balance
from lingtan.core.programme import load_programme
from lingtan.core.programme_schema import FIRST_YEAR, LAST_YEAR, ProgrammeError, ZeroCarbonProgramme
from lingtan.core.site_model import load_site_model
from lingtan.core.targets import TargetStatus, target_statuses


def targets(conn: sa.Connection, site_id: str, now: datetime
            ) -> tuple[ZeroCarbonProgramme, list[TargetStatus]]:
    z = load_programme(conn, site_id)
    return z, target_statuses(conn, site_id, z, now)


def target_ids(conn: sa.Connection, site_id: str) -> list[str]:
    """The ids of the site's targets, in programme order, without computing any figure."""
    return [t.id for t in load_programme(conn, site_id).targets]


def neutrality(conn: sa.Connection, site_id: str, year: int, now: datetime) -> NetBalance:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ProgrammeError(("query", "date"), f"the year must be {FIRST_YEAR}–{LAST_YEAR}")
    z = load_programme(conn, site_id)
    model = load_site_model(conn, site_id)
    start, _ = pf.year_window(year, model.site.timezone)
    if start >= now:
        raise ProgrammeError(("query", "date"), f"{year} has not begun")
    return net_balance(conn, site_id, z, year, now, model)


def evaluate(conn: sa.Connection, site_id: str, year: int, now: datetime) -> Evaluations:
    z = load_programme(conn, site_id)
    model = load_site_model(conn, site_id)
    start, _ = pf.year_window(year, model.site.timezone)
    if start >= now:
        raise ProgrammeError(("query", "year"), f"{year} has not begun")
    return evaluations(conn, site_id, z, year, now, model)


def year(conn: sa.Connection, site_id: str, year: int, now: datetime) -> pf.WindowFigures:
    """The year's figures as the targets, the net balance and the evaluations read them."""
    z = load_programme(conn, site_id)
    model = load_site_model(conn, site_id)
    start, _ = pf.year_window(year, model.site.timezone)
    if start >= now:
        raise ProgrammeError(("query", "year"), f"{year} has not begun")
    return pf.year_figures(conn, site_id, z, year, now, model)
