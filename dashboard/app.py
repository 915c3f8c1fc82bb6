"""Dash app factory and its ASGI wrapper (what `lingtan dashboard` serves with uvicorn)."""

from __future__ import annotations

from pathlib import Path

import dash
import flask
from a2wsgi import WSGIMiddleware

from dashboard.callbacks import make_loader, register_callbacks
from dashboard.layout import PRODUCT, build_layout
from lingtan.settings import get_settings

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
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = build_layout(settings.dashboard_refresh_seconds)
    register_callbacks(app, make_loader(settings.database_url, settings.site_id))
    _reject_unknown_paths(app)
    return app


def _reject_unknown_paths(app: dash.Dash) -> None:
    """Dash answers every unknown GET with the index page (for client-side routing, which this
    one-page dashboard does not use); a typo'd URL or a probe should get a real 404 instead."""
    catchall = app.config.routes_pathname_prefix + "<path:path>"

    @app.server.before_request
    def _honest_404() -> None:
        rule = flask.request.url_rule
        if rule is not None and rule.rule == catchall:
            flask.abort(404)


def create_asgi_app() -> WSGIMiddleware:
    """The Flask server behind Dash, mounted as WSGI so unknown paths stay honest 404s."""
    return WSGIMiddleware(create_dash_app().server)
