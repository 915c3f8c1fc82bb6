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
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.core.targets import TargetStatus, programme_figures, target_statuses


def targets(conn: sa.Connection, site_id: str, now: datetime
            ) -> tuple[ZeroCarbonProgramme, list[TargetStatus]]:
    z = load_programme(conn, site_id)
    return z, target_statuses(conn, site_id, z, now)


def target_ids(conn: sa.Connection, site_id: str) -> list[str]:
    """The ids of the site's targets, in programme order, without computing any figure."""
    return [t.id for t in load_programme(conn, site_id).targets]


def _begun(conn: sa.Connection, site_id: str, year: int, now: datetime, field: str
           ) -> tuple[ZeroCarbonProgramme, SiteEnergyModel]:
    """The programme and site model, once the year asked about (query ``field``) has begun."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ProgrammeError(("query", field), f"the year must be {FIRST_YEAR}–{LAST_YEAR}")
    z = load_programme(conn, site_id)
    model = load_site_model(conn, site_id)
    if pf.year_window(year, model.site.timezone)[0] >= now:
        raise ProgrammeError(("query", field), f"{year} has not begun")
    return z, model


def neutrality(conn: sa.Connection, site_id: str, year: int, now: datetime) -> NetBalance:
    z, model = _begun(conn, site_id, year, now, "date")
    return net_balance(conn, site_id, z, year, now, model)


def evaluate(conn: sa.Connection, site_id: str, year: int, now: datetime) -> Evaluations:
    z, model = _begun(conn, site_id, year, now, "year")
    return evaluations(conn, site_id, z, year, now, model)


def annual(conn: sa.Connection, site_id: str, year: int, now: datetime
           ) -> tuple[list[TargetStatus], pf.WindowFigures, NetBalance, Evaluations]:
    """Everything the annual report shows, each year's figures computed once: the targets' years
    include the one reported, and the net balance and evaluations read the same figures."""
    z, model = _begun(conn, site_id, year, now, "year")
    figs = programme_figures(conn, site_id, z, now, model)
    f = figs.years.get(year) or pf.year_figures(conn, site_id, z, year, now, model)
    nb = net_balance(conn, site_id, z, year, now, model, f)
    return (target_statuses(conn, site_id, z, now, figs), f, nb,
            evaluations(conn, site_id, z, year, now, model, f, nb))
