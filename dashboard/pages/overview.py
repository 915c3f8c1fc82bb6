"""The Overview: power now, energy and carbon today, the 24-hour power chart, the green-power gauge,
the power flows and the rolling carbon intensity. Refreshed on every tick: the layout is built once
and every refresh sends the numbers only (Patches), so the chart grows by its newest minutes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import Patch, dcc, html

from dashboard import chart
from dashboard.chart import chart_patch, empty_figure, fetch_start
from dashboard.controls import Basis
from dashboard.data import Reader, Status
from dashboard.figures import base_layout
from dashboard.formatting import format_number
from dashboard.i18n import Lang, t
from dashboard.page import Key, LayoutContext, PageQuery
from dashboard.snapshot import Snapshot, load_snapshot
from dashboard.tiles import TILES, note_id, tile, tile_views
from lingtan.core.kpi import FRESH, RolePower

PREFIX = ""  # the Overview keeps the bare ids (tile-grid-kw, status-badge …) scripts rely on
REFRESH_EVERY = 1  # live: every tick
STATE = "chart-state"  # what the chart holds, so a tick reads and sends only its newest minutes
OUTPUTS: tuple[Key, ...] = (
    *((s.id, prop) for s in TILES for prop in ("children", "data-value", "className")),
    *((note_id(s.id), prop) for s in TILES for prop in ("children", "title")),
    ("today-note", "children"),
    ("power-chart", "figure"),
    (STATE, "data"),
    ("green-gauge", "figure"),
    ("flow-sankey", "figure"),
    ("intensity-chart", "figure"),
)


@dataclass
class OverviewData:
    status: Status
    snapshot: Snapshot
    chart_state: dict[str, Any] | None  # the chart the snapshot's series continues; None: draw it whole
    basis: Basis


def is_live(snap: Snapshot) -> bool:
    """Live = every power meter answered within the KPI engine's freshness limit."""
    as_of = snap.overview.power.as_of
    return as_of is not None and not snap.overview.offline and snap.now - as_of <= FRESH


def load(read: Reader, q: PageQuery) -> OverviewData:
    first, last = chart.window(q.now)
    end = last + timedelta(minutes=1)
    state = q.state
    snap = read(lambda conn: load_snapshot(conn, q.site_id, q.now, fetch_start(state, q.now), end))
    if state and state.get("tz") != snap.site.timezone:
        # the site moved time zone under an open page: the chart's x labels are all wrong
        state = None
        snap = read(lambda conn: load_snapshot(conn, q.site_id, q.now, first, end))
    site = snap.site
    status = Status(site.name, site.timezone, snap.overview.power.as_of, is_live(snap))
    return OverviewData(status, snap, state, q.view.basis)


def render(data: OverviewData, lang: Lang) -> dict[Key, Any]:
    snap, basis = data.snapshot, data.basis
    out: dict[Key, Any] = {}
    for tile_id, view in tile_views(snap, lang, basis).items():
        out[(tile_id, "children")] = view.text
        out[(tile_id, "data-value")] = view.value
        out[(tile_id, "className")] = "tile-value" if view.state == "ok" else "tile-value missing"
        out[(note_id(tile_id), "children")] = view.note
        out[(note_id(tile_id), "title")] = view.note_title
    coverage = snap.today.electricity.consumption_kwh.coverage if snap.today else 0.0
    today_note = t("today.since", lang, tz=snap.site.timezone)
    if round(coverage * 100, 1) < 100:
        today_note += " · " + t("today.coverage", lang, pct=format_number(coverage * 100, 1, lang))
    patch, new_state = chart_patch(data.chart_state, snap.series, snap.now, snap.site.timezone)
    out[("today-note", "children")] = today_note
    out[("power-chart", "figure")] = patch
    out[(STATE, "data")] = new_state
    out.update({(cid, "figure"): patch for cid, patch in figure_patches(snap, basis, lang).items()})
    return out


def _section(title: str, note_id: str | None, group: str, lang: Lang) -> html.Section:
    heading = [html.H2(title, className="section-title")]
    if note_id:
        heading.append(html.Span("", id=note_id, className="section-note"))
    return html.Section(
        className=f"section section-{group}",
        children=[
            html.Div(heading, className="section-heading"),
            html.Div([tile(s, lang) for s in TILES if s.group == group], className=f"tiles tiles-{group}"),
        ],
    )


def layout(ctx: LayoutContext) -> list[Any]:
    """Static: every value arrives through the refresh, so the page renders while the database is down."""
    lang = ctx.lang
    return [
        _section(t("section.now", lang), None, "now", lang),
        _section(t("section.today", lang), "today-note", "today", lang),
        html.Section(
            className="section section-chart",
            children=[
                html.Div(html.H2(t("section.chart", lang), className="section-title"),
                         className="section-heading"),
                dcc.Graph(
                    id="power-chart",
                    figure=empty_figure(lang),
                    config={"displaylogo": False, "displayModeBar": False},
                    # a fixed box the figure fills: the panel never collapses while
                    # plotly re-lays out (resize, full-page screenshot)
                    responsive=True,
                    className="chart",
                    style={"height": "440px"},
                ),
            ],
        ),
        html.Section(className="section section-flows", children=[
            html.Div(className="panel", children=[
                dcc.Graph(id="green-gauge", figure=gauge_figure(lang), config=_STATIC)]),
            html.Div(className="panel", children=[
                html.H2(t("section.flow", lang), className="section-title"),
                dcc.Graph(id="flow-sankey", figure=sankey_figure(lang), config=_STATIC)]),
            html.Div(className="panel", children=[
                html.H2(t("section.intensity", lang), className="section-title"),
                dcc.Graph(id="intensity-chart", figure=intensity_figure(lang), config=_STATIC)]),
        ]),
        dcc.Store(id=STATE, data=None),
    ]


_STATIC = {"displaylogo": False, "displayModeBar": False}


# --- green-power gauge, power-flow Sankey, rolling carbon intensity ----------------------------
# Built once with their full structure; every refresh sends a Patch of the numbers only.

FLOW_NODES = ("flow.grid", "flow.pv", "flow.site", "flow.compressors", "flow.boiler_house",
              "flow.production", "flow.other")
# (source node, target node); link i's value comes from flow_values()[i]
FLOW_LINKS = ((0, 2), (1, 2), (2, 3), (2, 4), (2, 5), (2, 6))
FLOW_COLOURS = ("#4da3ff", "#f6c343", "#e6edf3", "#2ecc71", "#f0a030", "#b8c4d4", "#3a4557")


def gauge_figure(lang: Lang) -> go.Figure:
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=None, number={"suffix": " %", "valueformat": ".1f"},
        title={"text": t("tile.green_ratio", lang), "font": {"size": 16}},
        gauge={"axis": {"range": [0, 100]}, "bar": {"color": "#3ddc97"},
               "bgcolor": "rgba(0,0,0,0)", "borderwidth": 0,
               "steps": [{"range": [0, 100], "color": "rgba(230,237,243,0.06)"}]},
    ))
    layout = base_layout() | {"margin": {"l": 24, "r": 24, "t": 64, "b": 16}}
    fig.update_layout(**layout, height=300)
    return fig


def sankey_figure(lang: Lang) -> go.Figure:
    """Layout only: the Sankey trace arrives with the first flows (plotly's Sankey fails with
    "Invalid array length" when it has nodes or links without values)."""
    fig = go.Figure()
    fig.update_layout(**base_layout(), height=320, xaxis={"visible": False}, yaxis={"visible": False},
                      annotations=[_waiting(lang)])
    return fig


def _waiting(lang: Lang) -> dict[str, Any]:
    return {"text": t("note.waiting", lang) + "…", "showarrow": False, "xref": "paper", "yref": "paper",
            "x": 0.5, "y": 0.5, "font": {"size": 18, "color": "#8b9bb0"}}


def _sankey(drawn: list[tuple[tuple[int, int], float]], lang: Lang) -> dict[str, Any]:
    nodes = sorted({n for (a, b), _ in drawn for n in (a, b)})
    index = {n: i for i, n in enumerate(nodes)}
    return go.Sankey(
        arrangement="fixed", valueformat=",.1f", valuesuffix=" kW",
        node={"label": [t(FLOW_NODES[n], lang) for n in nodes], "color": [FLOW_COLOURS[n] for n in nodes],
              "pad": 18, "thickness": 18, "line": {"width": 0}},
        link={"source": [index[a] for (a, _), _ in drawn], "target": [index[b] for (_, b), _ in drawn],
              "value": [v for _, v in drawn], "color": "rgba(230,237,243,0.15)"},
    ).to_plotly_json()


def intensity_figure(lang: Lang) -> go.Figure:
    fig = go.Figure()
    for key, colour in (("basis.location", "#b8c4d4"), ("basis.market", "#3ddc97")):
        fig.add_trace(go.Scatter(x=[], y=[], name=t(key, lang), mode="lines+markers", connectgaps=False,
                                 line={"color": colour, "width": 2.5},
                                 hovertemplate="%{y:.3f} kgCO₂/kWh<extra>" + t(key, lang) + "</extra>"))
    fig.update_layout(**base_layout(), height=320, hovermode="x unified",
                      legend={"orientation": "h", "y": 1.12},
                      xaxis={"type": "date", "tickformat": "%H:%M", "gridcolor": "rgba(230,237,243,0.08)"},
                      yaxis={"title": {"text": "kgCO₂/kWh"}, "rangemode": "tozero",
                             "gridcolor": "rgba(230,237,243,0.08)"})
    return fig


def flow_values(flows: dict[str, RolePower], grid_kw: float | None, pv_kw: float | None
                ) -> list[float | None]:
    """Link values in FLOW_LINKS order: grid → site, PV → site, site → each sink. A sink with no
    metered power is 0 (no meter: nothing to draw); an unreadable one leaves "other" unknown."""
    def kw(*roles: str) -> float | None:
        parts = [flows[r] for r in roles if r in flows and flows[r].meters]
        if any(p.kw is None for p in parts):
            return None
        return sum(p.kw or 0.0 for p in parts)

    comp, boiler, prod = kw("compressor"), kw("boiler_fuel", "boiler_output"), kw("production")
    load = grid_kw + pv_kw if grid_kw is not None and pv_kw is not None else None
    known = [comp, boiler, prod]
    other = (None if load is None or any(v is None for v in known)
             else max(load - sum(v or 0.0 for v in known), 0.0))
    # the grid link carries import only: export flows the other way and is not site use
    return [max(grid_kw, 0.0) if grid_kw is not None else None, pv_kw, comp, boiler, prod, other]


def figure_patches(snap: Snapshot, basis: str, lang: Lang) -> dict[str, Patch]:
    """Patches for the gauge, the Sankey and the intensity chart: numbers only, no redraw."""
    gauge, flow, chart = Patch(), Patch(), Patch()
    ratio = snap.today.electricity.green_power_ratio if snap.today else None
    known = ratio is not None and ratio.value is not None and ratio.coverage > 0
    gauge["data"][0]["value"] = ratio.value * 100 if known else None  # type: ignore[union-attr]
    values = flow_values(snap.flows, snap.overview.power.grid_kw, snap.overview.power.pv_kw)
    # only flows that are known and positive are drawn: an unknown one is left out, never drawn as 0
    drawn = [(link, v) for link, v in zip(FLOW_LINKS, values, strict=True) if v is not None and v > 0]
    # the trace is a few hundred bytes: replacing it is the patch (the layout stays)
    flow["data"] = [_sankey(drawn, lang)] if drawn else []
    flow["layout"]["annotations"] = [] if drawn else [_waiting(lang)]
    tz = ZoneInfo(snap.site.timezone)
    points = snap.intensity.points if snap.intensity else []
    xs = [p.time.astimezone(tz).strftime("%Y-%m-%d %H:%M") for p in points]
    loc = [p.intensity_location_kg_per_kwh for p in points]
    mkt = [p.scope2_market_t * 1000 / p.consumption_kwh
           if p.scope2_market_t is not None and p.consumption_kwh else None for p in points]
    for i, ys in enumerate((loc, mkt)):
        chart["data"][i]["x"] = xs
        chart["data"][i]["y"] = ys
        # the chosen basis is drawn bold, the other one thin
        chosen = (i == 0) == (basis != "market")
        chart["data"][i]["line"]["width"] = 3.5 if chosen else 1.5
    return {"green-gauge": gauge, "flow-sankey": flow, "intensity-chart": chart}
