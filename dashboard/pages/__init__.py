"""The dashboard's pages: the registry, the router that draws a page into the frame, and the one
refresh callback every page goes through.

A page is a module that follows the protocol in ``dashboard/page.py`` (layout, load, render);
adding one is that module and its line in ``PAGES`` (docs/architecture.md, "The dashboard")."""

from __future__ import annotations

from datetime import date
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboard import access
from dashboard.controls import CONTROL_INPUTS, control_bar, controls_view
from dashboard.data import Reader
from dashboard.frame import banner, header, nav
from dashboard.i18n import DEFAULT, Lang, pick, t
from dashboard.page import LayoutContext, Page, PageQuery
from dashboard.pages import air, alerts, heat, meters, overview, reports, savings, structure, zero_carbon
from dashboard.refresh import ordered, output_keys, refresh
from lingtan.core.queries import list_sites
from lingtan.kernel import clock

# The registry: one line per page, in navigation order (path, module, navigation label's catalog
# key, whether it uses the time range and basis controls).
PAGES: tuple[Page, ...] = (
    Page("/", overview, "nav.overview"),
    Page("/air", air, "nav.air", ranged=True),
    Page("/heat", heat, "nav.heat", ranged=True),
    Page("/structure", structure, "nav.structure", ranged=True),
    Page("/zero-carbon", zero_carbon, "nav.zero_carbon"),
    Page("/savings", savings, "nav.savings"),
    Page("/meters", meters, "nav.meters"),
    Page("/reports", reports, "nav.reports"),
    Page("/alerts", alerts, "nav.alerts"),
)
BY_PATH: dict[str, Page] = {p.path: p for p in PAGES}


def _lang(value: str | None) -> Lang:
    return pick(value) or DEFAULT


def _site_facts(read: Reader, default_site: str) -> tuple[list[tuple[str, str]], date]:
    """(id, name) of the sites to choose from, and today on the default site's calendar; the
    default site alone and UTC's day while the database is down (the banner says why)."""
    try:
        found = read(list_sites)
    except Exception:  # the page must render while the database is down; the banner says why
        found = []
    zone = next((s.timezone for s in found if s.id == default_site), "UTC")
    return [(s.id, s.name) for s in found] or [(default_site, default_site)], clock.site_today(zone)


def render(path: str, lang: Lang, refresh_ms: int, read: Reader, default_site: str) -> list[Any]:
    """The page at ``path`` in its frame: header, navigation, the shared controls, the banner, the
    page's skeleton, a notice line for what its actions did, and its refresh timer."""
    page = BY_PATH.get(path)
    if page is None:
        return [html.H1("404"), html.A(t("nav.overview", lang), href="/")]
    sites, today = _site_facts(read, default_site)
    main = page.module.layout(LayoutContext(lang, today))
    if page.writes_body:
        main = [*main, html.Div(id=page.body[0], className="page-body")]
    return [
        header(lang, page.prefix, path, access.current_username()),
        nav(lang, path, [(p.path, p.nav) for p in PAGES]),
        control_bar(lang, sites, default_site, page.ranged),
        banner(page.prefix),
        html.Main(main, className="main"),
        html.Div(id=page.id("notice"), className="notice", role="status"),
        dcc.Interval(id=page.id("refresh"), interval=refresh_ms * page.refresh_every, n_intervals=0),
        dcc.Store(id=page.id("site-tz"), data=None),
    ]


def _register_refresh(app: dash.Dash, read: Reader, default_site: str, page: Page) -> None:
    """The page's refresh: header and outputs, or the banner when a read fails."""
    keys = output_keys(page)
    n_controls, n_inputs = len(CONTROL_INPUTS), len(page.inputs)
    states = [State("lang", "data"), State(page.id("site-tz"), "data")]
    if page.state:
        states.append(State(page.state, "data"))

    @app.callback([Output(i, p) for i, p in keys],
                  Input(page.id("refresh"), "n_intervals"),
                  *[Input(i, p) for i, p in (*CONTROL_INPUTS, *page.inputs)], *states)
    def _refresh(_n: int, *values: Any) -> list[Any]:
        controls = list(values[:n_controls])
        inputs = tuple(values[n_controls:n_controls + n_inputs])
        lang, timezone, *state = values[n_controls + n_inputs:]
        # another site: whatever the page kept of the last one starts over
        kept = state[0] if state and ctx.triggered_id != "ctl-site" else None
        q = PageQuery(controls_view(controls, default_site), clock.now(), access.current_role(), inputs, kept)
        return ordered(keys, refresh(page, read, q, _lang(lang), timezone))


def register(app: dash.Dash, read: Reader, default_site: str) -> None:
    @app.callback(Output("page-content", "children"), Output("rendered-path", "data"),
                  Input("url", "pathname"), State("lang", "data"), State("refresh-ms", "data"),
                  State("rendered-path", "data"))
    def _route(path: str | None, lang: str | None, refresh_ms: int | None, rendered: str | None
               ) -> tuple[Any, Any]:
        path = path or "/"
        if path == rendered:  # the layout came with this page already
            return no_update, no_update
        return render(path, _lang(lang), int(refresh_ms or 5000), read, default_site), path

    for page in PAGES:
        _register_refresh(app, read, default_site, page)
        actions = getattr(page.module, "actions", None)
        if actions is not None:
            actions(app, read, default_site)
