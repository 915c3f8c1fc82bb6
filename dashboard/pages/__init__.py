"""The dashboard's pages and the router that renders them into the frame.

Each page is a module with a ``PREFIX`` (for its header ids) and its body; its callbacks live
here, next to the router, so every Dash callback of the app is registered in one place
(dashboard/callbacks.py keeps the Overview's)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import ALL, Input, Output, State, ctx, html, no_update

from dashboard import access
from dashboard.controls import CONTROL_INPUTS, control_bar, controls_view, window
from dashboard.data import Reader, failure_outputs, header_output_keys, header_outputs, read_succeeded, status
from dashboard.frame import banner, header, nav
from dashboard.i18n import DEFAULT, Lang, pick, t
from dashboard.pages import air, alerts, heat, meters, overview, reports
from lingtan.core.queries import get_meter, get_site, list_sites
from lingtan.core.site_file import MeterPatch
from lingtan.kernel import clock

log = logging.getLogger(__name__)

# path → (page module, whether the page uses the time range and basis controls)
PAGES: dict[str, tuple[Any, bool]] = {
    "/": (overview, False), "/air": (air, True), "/heat": (heat, True), "/meters": (meters, False),
    "/reports": (reports, False), "/alerts": (alerts, False),
}
DETAIL_REFRESH_FACTOR = 6  # detail pages change slowly: refresh them every 6th overview tick


def _lang(value: str | None) -> Lang:
    return pick(value) or DEFAULT


def _sites(read: Reader, default_site: str) -> list[tuple[str, str]]:
    try:
        found = read(lambda conn: [(s.id, s.name) for s in list_sites(conn)])
    except Exception:  # the page must render while the database is down; the banner says why
        found = []
    return found or [(default_site, default_site)]


def _site_day(read: Reader, site_id: str) -> date:
    """Today on the site's own calendar (the day its reports mean), UTC's while the database is down."""
    try:
        zone = read(lambda conn: get_site(conn, site_id).timezone)
    except Exception:  # the page renders without a database; the banner says why
        zone = "UTC"
    return clock.site_today(zone)


def render(path: str, lang: Lang, refresh_ms: int, read: Reader, default_site: str) -> list[Any]:
    page, ranged = PAGES.get(path, (None, False))
    if page is None:
        return [html.H1("404"), html.A(t("nav.overview", lang), href="/")]
    prefix = page.PREFIX
    frame = [header(lang, prefix, path, access.current_username()), nav(lang, path),
             control_bar(lang, _sites(read, default_site), default_site, ranged), banner(prefix)]
    if page is overview:
        return [*frame, html.Main(overview.body(lang, refresh_ms), className="main")]
    extra = reports.controls(lang, _site_day(read, default_site)) if page is reports else None
    return [*frame, *([extra] if extra else []),
            html.Main(html.Div(id=f"{prefix}-body", className="page-body"), className="main"),
            html.Div(id=f"{prefix}-notice", className="notice", role="status"),
            dash.dcc.Interval(id=f"{prefix}-refresh", interval=refresh_ms * DETAIL_REFRESH_FACTOR)]


def _page_callback(app: dash.Dash, read: Reader, default_site: str, prefix: str,
                   make_body: Callable[[Any, Any, datetime, Lang], list[Any]],
                   extra_inputs: tuple[tuple[str, str], ...] = ()) -> None:
    """A detail page's refresh: body and header, or the banner when the read fails."""
    keys = [(f"{prefix}-body", "children"), *header_output_keys(prefix)]

    @app.callback([Output(i, p) for i, p in keys],
                  Input(f"{prefix}-refresh", "n_intervals"),
                  *[Input(i, p) for i, p in CONTROL_INPUTS], *[Input(i, p) for i, p in extra_inputs],
                  State("lang", "data"))
    def _refresh(_n: int, *values: Any) -> list[Any]:
        lang = _lang(values[-1])
        view = controls_view(list(values[:len(CONTROL_INPUTS)]), default_site)
        extra = values[len(CONTROL_INPUTS):-1]
        now = clock.now()
        try:
            def work(conn: Any) -> dict[tuple[str, str], Any]:
                st = status(conn, view.site_id, now)
                out = header_outputs(prefix, st, lang)
                out[(f"{prefix}-body", "children")] = make_body(conn, (view, extra, st.timezone), now, lang)
                return out

            out = read(work)
            read_succeeded()
        except Exception as exc:  # any failure is a banner; the page keeps its last values
            out = failure_outputs(prefix, exc, now, lang)
        return [out.get(k, no_update) for k in keys]


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

    def air_body(conn: Any, arg: Any, now: datetime, lang: Lang) -> list[Any]:
        view, _, tz = arg
        a, b = window(view, now, tz)
        return air.body(air.load(conn, view.site_id, a, b, now), lang)

    def heat_body(conn: Any, arg: Any, now: datetime, lang: Lang) -> list[Any]:
        view, _, tz = arg
        a, b = window(view, now, tz)
        return heat.body(heat.load(conn, view.site_id, a, b, now), lang)

    def meters_body(conn: Any, arg: Any, now: datetime, lang: Lang) -> list[Any]:
        view, _, _ = arg
        return meters.body(meters.load(conn, view.site_id, now), lang, access.has_role("engineer"))

    def reports_body(conn: Any, arg: Any, now: datetime, lang: Lang) -> list[Any]:
        view, (kind, period, day), tz = arg
        tabs, _ = reports.tables(conn, view.site_id, kind or "ghg-inventory", period or "month",
                                 _day(day, now, tz))
        return reports.html_tables(tabs, lang)

    def alerts_body(conn: Any, arg: Any, now: datetime, lang: Lang) -> list[Any]:
        _, _, tz = arg
        return alerts.body(alerts.load(conn, tz), lang, access.has_role("engineer"))

    _page_callback(app, read, default_site, alerts.PREFIX, alerts_body)
    _page_callback(app, read, default_site, air.PREFIX, air_body)
    _page_callback(app, read, default_site, heat.PREFIX, heat_body)
    _page_callback(app, read, default_site, meters.PREFIX, meters_body)
    _page_callback(app, read, default_site, reports.PREFIX, reports_body,
                   (("report-kind", "value"), ("report-period", "value"), ("report-date", "date")))

    @app.callback(Output("report-download", "data"), Input("report-csv", "n_clicks"),
                  Input("report-xlsx", "n_clicks"), State("ctl-site", "value"), State("report-kind", "value"),
                  State("report-period", "value"), State("report-date", "date"), prevent_initial_call=True)
    def _download(_csv: int, _xlsx: int, site: str | None, kind: str | None, period: str | None,
                  day: str | None) -> Any:
        fmt = "xlsx" if ctx.triggered_id == "report-xlsx" else "csv"
        site_id = site or default_site
        # no date picked: today on the site's own calendar
        return read(lambda conn: reports.download(
            conn, site_id, kind or "ghg-inventory", period or "month",
            _day(day, clock.now(), get_site(conn, site_id).timezone), fmt))

    _register_ack(app, read)

    @app.callback(Output("meters-notice", "children"),
                  Input({"type": "meter-role", "meter": ALL}, "value"), State("lang", "data"),
                  prevent_initial_call=True)
    def _change_role(_values: list[str | None], lang: str | None) -> str:
        changed = ctx.triggered_id
        if not isinstance(changed, dict) or not ctx.triggered or ctx.triggered[0]["value"] is None:
            return no_update
        # the viewer never sees the control, and the server checks again: a crafted request is refused
        if not access.has_role("engineer"):
            return t("edit.refused", _lang(lang))
        from lingtan.core.site_model import update_meter

        meter_id, role = changed["meter"], ctx.triggered[0]["value"]

        def work(conn: Any) -> bool:
            # The dropdowns fire when the table is (re)drawn, with the role they show: only a
            # different role is a change, so a page refresh never writes.
            if get_meter(conn, meter_id).role == role:
                return False
            update_meter(conn, meter_id, MeterPatch(role=role))
            conn.commit()
            return True

        if not read(work):
            return no_update
        log.info("dashboard: meter role changed", extra={"meter": meter_id, "role": role,
                                                          "user": access.current_username()})
        return t("edit.saved", _lang(lang), meter=meter_id, role=role)


def _register_ack(app: dash.Dash, read: Reader) -> None:
    @app.callback(Output("alerts-notice", "children"),
                  Input({"type": "alert-ack", "rule": ALL, "subject": ALL}, "n_clicks"),
                  State("lang", "data"), prevent_initial_call=True)
    def _ack(clicks: list[int], lang: str | None) -> str:
        target = ctx.triggered_id
        if not isinstance(target, dict) or not any(clicks):
            return no_update
        if not access.has_role("engineer"):
            return t("edit.refused", _lang(lang))
        from lingtan.core.alerts.store import ack

        by = access.current_username() or "dashboard"

        def work(conn: Any) -> None:
            ack(conn, int(target["rule"]), str(target["subject"]), by, clock.now())
            conn.commit()

        read(work)
        log.info("dashboard: alert acknowledged", extra={"rule": target["rule"], "subject": target["subject"],
                                                         "user": by})
        return t("alerts.acked_now", _lang(lang), rule=target["rule"], subject=target["subject"])


def _day(value: str | None, now: datetime, timezone: str) -> date:
    try:
        return date.fromisoformat(value[:10]) if value else now.astimezone(ZoneInfo(timezone)).date()
    except ValueError:
        return now.astimezone(ZoneInfo(timezone)).date()
