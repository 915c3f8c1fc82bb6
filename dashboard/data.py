"""How pages read: a connection per read through the core's service functions; the header status
every page shows (site name, newest power reading, live or stale); and the one failure path, the
banner, that every page's refresh takes when a read fails."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from dashboard.formatting import date_time, local_time
from dashboard.frame import pid
from dashboard.i18n import Lang, t
from lingtan.core.kpi import FRESH, power_now
from lingtan.core.queries import NotFound, get_site
from lingtan.kernel.db import get_engine

log = logging.getLogger(__name__)
T = TypeVar("T")
Reader = Callable[[Callable[[sa.Connection], T]], T]


class NotConfigured(RuntimeError):
    pass


def make_reader(database_url: str | None) -> Reader:
    def read(work: Callable[[sa.Connection], T]) -> T:
        if not database_url:
            raise NotConfigured("LINGTAN_DATABASE_URL is not set")
        with get_engine(database_url).connect() as conn:
            return work(conn)

    return read  # type: ignore[return-value]


@dataclass
class Status:
    site_name: str
    timezone: str
    as_of: datetime | None
    live: bool


def status(conn: sa.Connection, site_id: str, now: datetime) -> Status:
    site = get_site(conn, site_id)
    power, offline = power_now(conn, site_id, now)
    as_of = power.as_of
    return Status(site.name, site.timezone, as_of, as_of is not None and not offline and now - as_of <= FRESH)


def header_outputs(prefix: str, st: Status, lang: Lang) -> dict[tuple[str, str], Any]:
    return {
        (pid(prefix, "site-name"), "children"): st.site_name,
        (pid(prefix, "as-of"), "children"): (f"{date_time(st.as_of, st.timezone, lang)} {st.timezone}"
                                             if st.as_of else t("as_of.none", lang)),
        (pid(prefix, "status-badge"), "children"): t("status.live" if st.live else "status.stale", lang),
        (pid(prefix, "status-badge"), "className"): "badge badge-live" if st.live else "badge badge-stale",
        (pid(prefix, "db-banner"), "children"): "",
        (pid(prefix, "db-banner"), "className"): "banner hidden",
        # the site's zone, for the banner's clock should a later refresh fail
        (pid(prefix, "site-tz"), "data"): st.timezone,
    }


class _Outage:
    """Logs when the database goes away and when it is back, not once per tick per screen."""

    down = False

    @classmethod
    def failed(cls, exc: Exception) -> None:
        if not cls.down:
            cls.down = True
            log.warning("dashboard: database unreachable (%s: %s)", exc.__class__.__name__, exc)

    @classmethod
    def ok(cls) -> None:
        if cls.down:
            cls.down = False
            log.info("dashboard: database reachable again")


def read_succeeded() -> None:
    _Outage.ok()


def failure_outputs(prefix: str, exc: Exception, now: datetime, lang: Lang, timezone: str | None = None
                    ) -> dict[tuple[str, str], Any]:
    """The banner says what failed; everything else on the page keeps its last values.

    ``timezone``: the site's, once a refresh has succeeded on the page (the banner's time is then
    the site's clock); UTC before that."""
    if isinstance(exc, NotConfigured):
        message = t("error.not_configured", lang)
    elif isinstance(exc, NotFound):
        message = t("error.site_not_found", lang, site=exc)
    elif isinstance(exc, sa.exc.SQLAlchemyError | OSError):
        _Outage.failed(exc)
        checked = (local_time(now, timezone, "%H:%M:%S") if timezone
                   else local_time(now, "UTC", "%H:%M:%S UTC"))
        message = t("error.db_unreachable", lang, time=checked)
    else:
        log.exception("dashboard refresh failed", exc_info=exc)
        message = t("error.refresh_failed", lang)
    return {
        (pid(prefix, "status-badge"), "children"): t("status.stale", lang),
        (pid(prefix, "status-badge"), "className"): "badge badge-error",
        (pid(prefix, "db-banner"), "children"): message,
        (pid(prefix, "db-banner"), "className"): "banner",
    }


HEADER_KEYS = (("site-name", "children"), ("as-of", "children"), ("status-badge", "children"),
               ("status-badge", "className"), ("db-banner", "children"), ("db-banner", "className"),
               ("site-tz", "data"))


def header_output_keys(prefix: str) -> list[tuple[str, str]]:
    return [(pid(prefix, name), prop) for name, prop in HEADER_KEYS]
