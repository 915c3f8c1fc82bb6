"""The metering structure (能耗结构): where the energy goes, node by node. A treemap or sunburst of
the tree by energy, carbon or cost, a Sankey from sources through the levels to end uses with
the unmetered remainder shown as such, electricity per time-of-use band per node, and the
department ranking. Every number is a ``structure_kpis`` node figure (docs/domain.md,
"Metering structure")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
import sqlalchemy as sa
from dash import dcc, html

from dashboard.data import Reader, Status, status
from dashboard.figures import base_layout
from dashboard.formatting import MISSING, date_time, format_number
from dashboard.i18n import Lang, t
from dashboard.page import LayoutContext, PageQuery
from lingtan.core.kpi import window_kpis
from lingtan.core.structure_flows import UNMETERED, Flow, flows, measure
from lingtan.core.structure_kpis import StructureKpis, structure_kpis
from lingtan.core.structure_schema import CARRIERS, END_USES, UNIT
from lingtan.core.tariff import NO_BAND, UNPLACED

PREFIX = "structure"
MEASURES = ("energy", "tce", "carbon", "cost")
CHARTS = ("treemap", "sunburst", "end_use")
INPUTS = (("structure-measure", "value"), ("structure-carrier", "value"), ("structure-chart", "value"))
SANKEY_DEPTH = 2  # deeper levels fold into their ancestor at this depth (readable with 300 meters)
BAR_NODES = 24  # the nodes with the most electricity get a time-of-use bar
UNMETERED_ROWS = 12  # besides every flagged one
BAND_COLOURS = {"sharp_peak": "#e74c3c", "peak": "#f0a030", "flat": "#8b9bb0", NO_BAND: "#8b9bb0",
                "valley": "#3498db", "deep_valley": "#1f5f8b", UNPLACED: "#3a4557"}
KNOWN_BANDS = ("sharp_peak", "peak", "flat", "valley", "deep_valley")
UNITS = {"tce": "tce", "carbon": "tCO2e", "cost": "CNY"}


@dataclass
class StructureData:
    status: Status
    start: datetime
    end: datetime
    tree: StructureKpis
    sources: dict[str, float]  # electricity into the root: grid import, own PV self-consumed
    measure: str
    carrier: str
    chart: str


def layout(ctx: LayoutContext) -> list[Any]:
    lang = ctx.lang
    return [html.Div(className="controls report-controls structure-controls", children=[
        html.Span(t("structure.by", lang), className="control-label"),
        dcc.RadioItems(id="structure-measure", value="energy", inline=True, persistence=True,
                       persistence_type="local",
                       options=[{"label": t(f"structure.measure.{m}", lang), "value": m} for m in MEASURES]),
        dcc.Dropdown(id="structure-carrier", value="electricity", clearable=False, searchable=False,
                     persistence=True, persistence_type="local", className="control-carrier",
                     options=[{"label": t(f"structure.carrier.{c}", lang), "value": c} for c in CARRIERS]),
        dcc.RadioItems(id="structure-chart", value="treemap", inline=True, persistence=True,
                       persistence_type="local",
                       options=[{"label": t(f"structure.chart.{c}", lang), "value": c} for c in CHARTS]),
    ])]


def load(read: Reader, q: PageQuery) -> StructureData:
    return read(lambda conn: _read(conn, q))


def _read(conn: sa.Connection, q: PageQuery) -> StructureData:
    st = status(conn, q.site_id, q.now)
    start, end = q.window(st.timezone)
    tree = structure_kpis(conn, q.site_id, start, end, q.now)
    site = window_kpis(conn, q.site_id, start, end, q.now)
    e = site.electricity
    sources = {"grid": e.grid_import_kwh.value or 0.0, "pv": e.pv_self_consumed_kwh.value or 0.0}
    chosen = list(q.inputs) + [None] * (3 - len(q.inputs))
    return StructureData(st, start, end, tree, sources, chosen[0] or "energy", chosen[1] or "electricity",
                         chosen[2] or "treemap")


def _value(data: StructureData) -> Any:
    return measure(data.measure, data.carrier)


def _unit(data: StructureData) -> str:
    return UNIT[data.carrier] if data.measure == "energy" else UNITS[data.measure]


def end_use_label(name: str, lang: Lang) -> str:
    return t(f"structure.end_use.{name}", lang) if name in (*END_USES, "unassigned") else name


def band_label(name: str, lang: Lang) -> str:
    if name == NO_BAND:
        return t("structure.band.none", lang)
    if name == UNPLACED:
        return t("structure.band.unplaced", lang)
    return t(f"structure.band.{name}", lang) if name in KNOWN_BANDS else name


def tree_figure(data: StructureData, lang: Lang) -> go.Figure:
    """Each box is a node; what a node's children do not account for is a red box of its own
    ("unmetered"), so every area is energy metered once and the remainder is seen, not hidden."""
    value = _value(data)
    by_id = {n.id: n for n in data.tree.nodes}
    ids, labels, parents, values, texts, colours = [], [], [], [], [], []
    unit = _unit(data)

    def box(box_id: str, label: str, parent: str, area: float, shown: float | None,
            colour: str | None) -> None:
        ids.append(box_id)
        labels.append(label)
        parents.append(parent)
        values.append(max(area, 0.0))
        texts.append(f"{format_number(shown, 1, lang) if shown is not None else MISSING} {unit}")
        colours.append(colour)

    for n in data.tree.nodes:
        own = value(n)
        box(n.id, n.name, n.parent or "", 0.0 if n.children else max(own or 0.0, 0.0), own, None)
        if n.children:
            rest = max(own or 0.0, 0.0) - sum(max(value(by_id[k]) or 0.0, 0.0) for k in n.children)
            if rest > 0:
                box(f"{n.id}/{UNMETERED}", t("structure.unmetered", lang), n.id, rest, rest, "#e74c3c")
    if data.chart == "end_use":
        return _end_use_figure(data, lang)
    kind = go.Sunburst if data.chart == "sunburst" else go.Treemap
    fig = go.Figure(kind(ids=ids, labels=labels, parents=parents, values=values, branchvalues="remainder",
                         text=texts, textinfo="label+text", hoverinfo="label+text", maxdepth=3,
                         marker={"colors": colours}))
    fig.update_layout(**{**base_layout(), "margin": {"l": 8, "r": 8, "t": 8, "b": 8}}, height=460)
    return fig


def _end_use_figure(data: StructureData, lang: Lang) -> go.Figure:
    """The same energy by end use (分项): each end use holds the leaves that serve it, and the
    unmetered remainders are an end use of their own."""
    value = _value(data)
    by_id = {n.id: n for n in data.tree.nodes}
    unit = _unit(data)
    ids, labels, parents, values, texts, colours = [], [], [], [], [], []
    uses: dict[str, float] = {}
    leaves: list[tuple[str, str, str, float]] = []
    for n in data.tree.nodes:
        own = max(value(n) or 0.0, 0.0)
        kids = sum(max(value(by_id[k]) or 0.0, 0.0) for k in n.children)
        if not n.children:
            use, amount, box_id, label = n.end_use, own, n.id, n.name
        elif own - kids > 0:
            use, amount, box_id, label = UNMETERED, own - kids, f"{n.id}/{UNMETERED}", n.name
        else:
            continue
        if amount > 0:
            uses[use] = uses.get(use, 0.0) + amount
            leaves.append((box_id, label, use, amount))
    for use, total in uses.items():
        ids.append(f"use:{use}")
        labels.append(t("structure.unmetered", lang) if use == UNMETERED else end_use_label(use, lang))
        parents.append("")
        values.append(0.0)
        texts.append(f"{format_number(total, 1, lang)} {unit}")
        colours.append("#e74c3c" if use == UNMETERED else None)
    for box_id, label, use, amount in leaves:
        ids.append(box_id)
        labels.append(label)
        parents.append(f"use:{use}")
        values.append(amount)
        texts.append(f"{format_number(amount, 1, lang)} {unit}")
        colours.append("#e74c3c" if use == UNMETERED else None)
    fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values,
                               branchvalues="remainder",
                               text=texts, textinfo="label+text", hoverinfo="label+text", maxdepth=2,
                               marker={"colors": colours}))
    fig.update_layout(**{**base_layout(), "margin": {"l": 8, "r": 8, "t": 8, "b": 8}}, height=460)
    return fig


def sankey_figure(data: StructureData, lang: Lang) -> go.Figure | None:
    sources = data.sources if (data.measure, data.carrier) == ("energy", "electricity") else None
    # Every remainder ends in one "unmetered" node beside the end uses: each link still starts at
    # the node whose sub-meters missed it, and a plant of hundreds of meters stays readable.
    drawn = [Flow(f.source, UNMETERED if f.target.startswith(UNMETERED) else f.target, f.value)
             for f in flows(data.tree, _value(data), sources, max_depth=SANKEY_DEPTH)]
    if not drawn:
        return None
    names = {n.id: n.name for n in data.tree.nodes}
    keys = list(dict.fromkeys(k for f in drawn for k in (f.source, f.target)))

    def label(key: str) -> str:
        kind, _, rest = key.partition(":")
        if kind == "source":
            return t(f"structure.source.{rest}", lang)
        if kind == UNMETERED:
            return t("structure.unmetered", lang)
        if kind == "end_use":
            return end_use_label(rest, lang)
        return names.get(rest, rest)

    colours = ["#e74c3c" if k.startswith(UNMETERED) else "#3ddc97" if k.startswith("source") else
               "#f6c343" if k.startswith("end_use") else "#5dade2" for k in keys]
    index = {k: i for i, k in enumerate(keys)}
    fig = go.Figure(go.Sankey(
        valueformat=",.1f", valuesuffix=f" {_unit(data)}",
        node={"label": [label(k) for k in keys], "color": colours, "pad": 12, "thickness": 14,
              "line": {"width": 0}},
        link={"source": [index[f.source] for f in drawn], "target": [index[f.target] for f in drawn],
              "value": [f.value for f in drawn], "color": "rgba(230,237,243,0.15)"}))
    fig.update_layout(**base_layout(), height=max(360, 16 * len(keys)))
    return fig


def bands_figure(data: StructureData, lang: Lang) -> go.Figure | None:
    nodes = [n for n in data.tree.nodes if n.cost_by_band]
    nodes = sorted(nodes, key=lambda n: -(n.energy["electricity"].value or 0.0))[:BAR_NODES]
    if not nodes:
        return None
    nodes.sort(key=lambda n: (n.depth, n.id))
    bands = list(dict.fromkeys(b.band for n in nodes for b in n.cost_by_band))
    fig = go.Figure()
    for band in bands:
        fig.add_trace(go.Bar(name=band_label(band, lang), x=[n.name for n in nodes],
                             y=[sum(b.kwh for b in n.cost_by_band if b.band == band) for n in nodes],
                             marker_color=BAND_COLOURS.get(band, "#9b59b6")))
    fig.update_layout(**base_layout(), barmode="stack", height=360, yaxis={"title": {"text": "kWh"}},
                      legend={"orientation": "h", "y": 1.12})
    return fig


def _cell(value: float | None, decimals: int, lang: Lang) -> html.Td:
    return html.Td(format_number(value, decimals, lang) if value is not None else MISSING, className="num")


def ranking(data: StructureData, lang: Lang) -> html.Table | html.P:
    rows = sorted((n for n in data.tree.nodes if n.department),
                  key=lambda n: (n.tce.value is None, -(n.tce.value or 0.0)))
    if not rows:
        return html.P(t("structure.no_departments", lang), className="empty")
    heads = ("rank", "department", "kwh", "tce", "tco2e", "carbon_cost", "cost", "demand", "coverage")
    body = []
    for i, n in enumerate(rows, 1):
        elec = n.energy.get("electricity")
        body.append(html.Tr(id=f"structure-rank-{n.id}", children=[
            html.Td(str(i)), html.Td(n.name), _cell(elec.value if elec else None, 0, lang),
            _cell(n.tce.value, 3, lang), _cell(n.tco2e_market.value, 3, lang),
            _cell(n.carbon_cost_cny.value, 0, lang), _cell(n.cost_cny.value, 0, lang),
            _cell(n.demand.kw.value, 1, lang),
            _cell(min(n.tce.coverage, n.tco2e_market.coverage) * 100, 1, lang)]))
    return html.Table(className="table structure-ranking", children=[
        html.Thead(html.Tr([html.Th(t(f"structure.col.{h}", lang)) for h in heads])), html.Tbody(body)])


def unmetered(data: StructureData, lang: Lang) -> html.Table | html.Div | None:
    every = [(n, u) for n in data.tree.nodes for u in n.unmetered]
    if not every:
        return None
    # the flagged ones and then the largest shares: a plant of hundreds of meters has a remainder
    # at every parent, and a page of them all hides the few that matter (the API has every one)
    ranked = sorted(every, key=lambda nu: (not nu[1].flagged, -(nu[1].share or 0.0)))
    lines = [nu for i, nu in enumerate(ranked) if nu[1].flagged or i < UNMETERED_ROWS]
    body = [html.Tr(className="flagged" if u.flagged else "", children=[
        html.Td(n.name), html.Td(t(f"structure.carrier.{u.carrier}", lang)),
        _cell(u.own, 1, lang), _cell(u.sub_metered, 1, lang), _cell(u.value.value, 1, lang),
        _cell(u.share * 100 if u.share is not None else None, 1, lang),
        html.Td(t("structure.flagged", lang, pct=format_number(data.tree.unmetered_threshold_pct, 0, lang))
                if u.flagged else "")]) for n, u in lines]
    heads = ("node", "carrier", "own", "sub_metered", "unmetered", "share", "note")
    table = html.Table(className="table structure-unmetered", children=[
        html.Thead(html.Tr([html.Th(t(f"structure.col.{h}", lang)) for h in heads])), html.Tbody(body)])
    if len(lines) == len(every):
        return table
    return html.Div([table, html.P(t("structure.unmetered.more", lang, n=len(every) - len(lines)),
                                   className="tile-note")])


def _card(title: str, child: Any, card_id: str) -> html.Div:
    return html.Div(className="card", id=card_id, children=[html.H3(title, className="card-title"), child])


def _graph(fig: go.Figure | None, lang: Lang) -> Any:
    if fig is None:
        return html.P(t("missing.no_data", lang), className="empty")
    return dcc.Graph(figure=fig, config={"displayModeBar": False})


def render(data: StructureData, lang: Lang) -> list[Any]:
    tz = data.status.timezone
    caption = html.P(f"{date_time(data.start, tz, lang, seconds=False)} – "
                     f"{date_time(data.end, tz, lang, seconds=False)}", className="window-caption")
    if not data.tree.nodes:
        return [caption, html.P(t("structure.none", lang), className="empty", id="structure-none")]
    table = unmetered(data, lang)
    return [
        caption,
        _card(t("structure.tree.title", lang), _graph(tree_figure(data, lang), lang), "structure-tree"),
        _card(t("structure.sankey.title", lang), _graph(sankey_figure(data, lang), lang), "structure-sankey"),
        _card(t("structure.bands.title", lang), _graph(bands_figure(data, lang), lang), "structure-bands"),
        _card(t("structure.ranking.title", lang), ranking(data, lang), "structure-ranking"),
        *([_card(t("structure.unmetered.title", lang), table, "structure-unmetered")] if table else []),
    ]
