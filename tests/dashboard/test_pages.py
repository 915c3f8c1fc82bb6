"""The page framework: a page is a module and a registry line; every page refreshes through the
one refresh, whose failure is the banner; and small rules of the pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from dash import html, no_update
from plotly.utils import PlotlyJSONEncoder

from dashboard.app import create_dash_app
from dashboard.controls import view_of
from dashboard.data import Reader, Status, make_reader
from dashboard.i18n import t
from dashboard.page import DEFAULT_REFRESH_EVERY, Page, PageQuery
from dashboard.pages import BY_PATH, PAGES, render
from dashboard.pages.reports import report_day
from dashboard.refresh import ordered, output_keys, refresh
from lingtan.kernel.settings import get_settings
from tests.dashboard.browser import TEST_DASHBOARD_SECRET
from tests.dashboard.seed import SITE_ID, SITE_NAME, Seeded


def test_a_report_without_a_date_is_for_today_on_the_sites_calendar() -> None:
    evening_utc = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)  # already the 22nd in Shenyang
    assert report_day(None, evening_utc, "Asia/Shanghai") == date(2026, 11, 22)
    assert report_day(None, evening_utc, "Europe/Berlin") == date(2026, 11, 21)
    assert report_day("2026-03-05T00:00:00", evening_utc, "Asia/Shanghai") == date(2026, 3, 5)
    assert report_day("not a date", evening_utc, "Asia/Shanghai") == date(2026, 11, 22)  # a bad value: today


# --- the page protocol --------------------------------------------------------------------------


@dataclass
class Counted:
    status: Status
    count: int


def _module(load: Callable[[Reader, PageQuery], Counted]) -> SimpleNamespace:
    """The smallest page: a PREFIX, a layout, a load and a render (dashboard/page.py)."""
    return SimpleNamespace(
        PREFIX="demo",
        layout=lambda ctx: [html.H2(t("nav.meters", ctx.lang))],
        load=load,
        render=lambda data, lang: [html.P(str(data.count), id="demo-count")],
    )


def _query(now: datetime, site: str = SITE_ID, role: str = "viewer") -> PageQuery:
    return PageQuery(view_of(site, None, None, None, None, site), now, role)


def test_a_page_is_a_module_and_a_registry_line() -> None:
    status = Status("Plant", "Asia/Shanghai", None, False)
    page = Page("/demo", _module(lambda read, q: Counted(status, read(lambda conn: 3))), "nav.meters")
    assert page.outputs == (("demo-body", "children"),) and page.writes_body
    assert page.refresh_every == DEFAULT_REFRESH_EVERY and page.inputs == () and page.state is None
    out = refresh(page, lambda work: work(None), _query(datetime.now(UTC)), "en")
    assert out[("demo-site-name", "children")] == "Plant"
    assert out[("demo-db-banner", "className")] == "banner hidden"
    assert out[("demo-site-tz", "data")] == "Asia/Shanghai"
    assert out[("demo-body", "children")][0].children == "3"
    assert set(out) == set(output_keys(page))


def test_a_failing_load_is_the_banner_and_the_body_stays() -> None:
    def read(work: Any) -> Any:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    page = Page("/demo", _module(lambda read, q: read(lambda conn: None)), "nav.meters")
    now = datetime(2026, 11, 21, 6, 30, 5, tzinfo=UTC)
    out = refresh(page, read, _query(now), "en", timezone="Asia/Shanghai")
    assert set(out) == {("demo-status-badge", "children"), ("demo-status-badge", "className"),
                        ("demo-db-banner", "children"), ("demo-db-banner", "className")}
    assert "Database unreachable" in out[("demo-db-banner", "children")]
    assert "14:30:05" in out[("demo-db-banner", "children")]  # the site's clock
    keys = output_keys(page)
    assert ordered(keys, out)[keys.index(page.body)] is no_update  # the body keeps what it showed


def test_every_registered_page_is_navigated_routed_and_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINGTAN_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    monkeypatch.setenv("LINGTAN_DASHBOARD_SECRET", TEST_DASHBOARD_SECRET)
    get_settings.cache_clear()
    try:
        app = create_dash_app()
    finally:
        get_settings.cache_clear()
    written = {o for key in app.callback_map for o in key.strip(".").split("...")}
    for page in PAGES:
        for cid, prop in output_keys(page):
            assert f"{cid}.{prop}" in written, (page.path, cid, prop)
        frame = render(page.path, "en", 5000, _no_database, SITE_ID)
        links = [c.href for c in frame[1].children]
        assert links == [p.path for p in PAGES]
        timer = next(c for c in frame if getattr(c, "id", None) == page.id("refresh"))
        assert timer.interval == 5000 * page.refresh_every
    assert BY_PATH["/"].refresh_every == 1 and BY_PATH["/air"].refresh_every == 6


def _no_database(work: Any) -> Any:
    raise OSError("no database in this test")


def test_detail_pages_through_the_one_refresh(demo_plant: tuple[str, Seeded]) -> None:
    url, seeded = demo_plant
    now = seeded.end + timedelta(seconds=5)
    for role, can_edit in (("viewer", False), ("engineer", True)):
        out = refresh(BY_PATH["/meters"], make_reader(url), _query(now, role=role), "en")
        assert out[("meters-site-name", "children")] == SITE_NAME
        assert out[("meters-status-badge", "children")] == "live"
        body = json.dumps(out[("meters-body", "children")], cls=PlotlyJSONEncoder)
        assert '"id": "meters-table"' in body and ('"role-edit"' in body) == can_edit, role
    heat = refresh(BY_PATH["/heat"], make_reader(url), _query(now), "en")
    assert heat[("heat-db-banner", "className")] == "banner hidden"
    # the window is today on the site's calendar: since midnight in Shanghai, up to now
    caption = json.dumps(heat[("heat-body", "children")], cls=PlotlyJSONEncoder)
    assert "15 Jun 2026, 00:00" in caption and "15 Jun 2026, 10:00" in caption
    reports = refresh(BY_PATH["/reports"], make_reader(url), PageQuery(
        view_of(SITE_ID, None, None, None, None, SITE_ID), now, inputs=("energy-balance", "month", None)))
    assert '"table report"' in json.dumps(reports[("reports-body", "children")], cls=PlotlyJSONEncoder)
    gone = refresh(BY_PATH["/alerts"], make_reader(url), _query(now, site="no-such-site"), "en")
    assert "Site not found" in gone[("alerts-db-banner", "children")]
