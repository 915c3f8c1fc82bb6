"""Page structure of the Overview. Static: every value arrives through the refresh callback,
so the page itself renders even while the database is down."""

from __future__ import annotations

from dash import dcc, html

from dashboard.chart import empty_figure
from dashboard.tiles import TILES, tile

PRODUCT = "Lingtan 零碳"


def _header() -> html.Header:
    return html.Header(
        className="header",
        children=[
            html.Div(className="brand", children=[
                html.Span("Lingtan", className="brand-latin"),
                html.Span("零碳", className="brand-han"),
            ]),
            html.Div("…", id="site-name", className="site-name"),
            html.Div(className="status", children=[
                html.Div(className="as-of-block", children=[
                    html.Span("as of", className="as-of-label"),
                    html.Span("—", id="as-of", className="as-of"),
                ]),
                html.Span("connecting", id="status-badge", className="badge badge-stale"),
            ]),
        ],
    )


def _section(title: str, note_id: str | None, group: str) -> html.Section:
    heading = [html.H2(title, className="section-title")]
    if note_id:
        heading.append(html.Span("", id=note_id, className="section-note"))
    return html.Section(
        className=f"section section-{group}",
        children=[
            html.Div(heading, className="section-heading"),
            html.Div([tile(t) for t in TILES if t.group == group], className=f"tiles tiles-{group}"),
        ],
    )


def build_layout(refresh_seconds: float) -> html.Div:
    return html.Div(
        className="page",
        children=[
            _header(),
            html.Div("", id="db-banner", className="banner hidden", role="alert"),
            _section("Now", None, "now"),
            _section("Today", "today-note", "today"),
            html.Section(
                className="section section-chart",
                children=[
                    html.Div(html.H2("Power, last 24 hours", className="section-title"),
                             className="section-heading"),
                    dcc.Graph(
                        id="power-chart",
                        figure=empty_figure(),
                        config={"displaylogo": False, "displayModeBar": False},
                        # a fixed box the figure fills: the panel never collapses while
                        # plotly re-lays out (resize, full-page screenshot)
                        responsive=True,
                        className="chart",
                        style={"height": "440px"},
                    ),
                ],
            ),
            dcc.Store(id="chart-state", data=None),
            dcc.Interval(id="refresh", interval=int(refresh_seconds * 1000), n_intervals=0),
        ],
    )
