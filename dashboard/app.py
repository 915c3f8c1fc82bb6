"""Dash app factory and its ASGI wrapper (what `lingtan dashboard` serves with uvicorn)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dash
import flask
from a2wsgi import WSGIMiddleware
from dash import html

from dashboard import pages
from dashboard.access import CSRF_COOKIE, current_language, install_access
from dashboard.data import make_reader
from dashboard.i18n import COOKIE, DEFAULT, Lang, pick, request_lang
from dashboard.layout import PRODUCT, build_layout
from lingtan.kernel.settings import get_settings

ASSETS = Path(__file__).parent / "assets"


def create_dash_app() -> dash.Dash:
    settings = get_settings()
    app = dash.Dash(
        __name__,
        assets_folder=str(ASSETS),
        serve_locally=True,  # factory networks are often offline: no CDN scripts or fonts
        external_scripts=[],
        external_stylesheets=[],
        title=f"{PRODUCT} · Overview",
        update_title=None,  # no "Updating…" flicker in the tab title every refresh
        # pages are rendered by the router: their components are not in the initial layout
        suppress_callback_exceptions=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        # the renderer sends this cookie's CSRF token as X-CSRFToken with every callback
        csrf_token_name=CSRF_COOKIE,
    )
    refresh_seconds = settings.dashboard_refresh_seconds
    read = make_reader(settings.database_url)

    def layout() -> html.Div:
        # a function: Dash calls it per page load, so each reader gets their own language, and
        # the page asked for comes with the layout instead of one round trip later
        lang, path = _lang(), _page_path(app)
        ms = int(refresh_seconds * 1000)
        first = pages.render(path, lang, ms, read, settings.site_id) if path else None
        return build_layout(refresh_seconds, lang, path, first)

    app.layout = layout
    install_access(app)  # before the 404 guard: an unknown path says nothing until signed in
    pages.register(app, read, settings.site_id)
    _reject_unknown_paths(app)
    _remember_language(app)
    return app


def _page_path(app: dash.Dash) -> str | None:
    """The page the browser is on: the layout is fetched by the page itself (same origin, so the
    Referer carries the path); None when unknown, and the router renders it instead."""
    if not flask.has_request_context() or not flask.request.referrer:
        return None
    path = urlsplit(flask.request.referrer).path
    prefix = app.config.routes_pathname_prefix.rstrip("/")
    path = path[len(prefix):] if prefix and path.startswith(prefix) else path
    return path if path in pages.BY_PATH else None


def _lang() -> Lang:
    if not flask.has_request_context():
        return DEFAULT  # Dash validates the layout once at start-up, outside any request
    r = flask.request
    return request_lang(r.args, r.cookies, r.headers.get("Accept-Language"), current_language())


def _remember_language(app: dash.Dash) -> None:
    """The switch is ``?lang=``; a cookie keeps the choice for the next visit and for refreshes."""

    @app.server.after_request
    def _set_cookie(response: flask.Response) -> flask.Response:
        chosen = pick(flask.request.args.get("lang"))
        if chosen:
            response.set_cookie(COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True)
        return response


def _reject_unknown_paths(app: dash.Dash) -> None:
    """Dash answers every unknown GET with the index page (for client-side routing); only the
    dashboard's own pages should get it, a typo'd URL or a probe a real 404."""
    catchall = app.config.routes_pathname_prefix + "<path:path>"
    known = {p.strip("/") for p in pages.BY_PATH}

    @app.server.before_request
    def _honest_404() -> None:
        rule = flask.request.url_rule
        path = (flask.request.view_args or {}).get("path")
        if rule is not None and rule.rule == catchall and path not in known:
            flask.abort(404)


def create_asgi_app() -> WSGIMiddleware:
    """The Flask server behind Dash, mounted as WSGI so unknown paths stay honest 404s."""
    return WSGIMiddleware(create_dash_app().server)
