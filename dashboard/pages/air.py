"""Compressed air: per compressor specific power against its GB 19153-2019 grade band, the
load/unload/off timeline of the last 24 hours, load ratio, and the heat recovered and what it saved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import sqlalchemy as sa
from dash import dcc, html

from dashboard.data import Reader, Status, status
from dashboard.figures import base_layout, figure_tile
from dashboard.formatting import date_time, format_number
from dashboard.i18n import Lang, t
from dashboard.page import LayoutContext, PageQuery
from lingtan.core.figures import Compressor, Figure, WasteHeat
from lingtan.core.kpi import window_kpis
from lingtan.core.queries import list_meters, readings_series

PREFIX = "air"
# compressor state codes of the generic screw-compressor profile (0 off, 1 unloaded, 2 loaded)
STATE_KEYS = {0: "air.state.off", 1: "air.state.unloaded", 2: "air.state.loaded"}
STATE_COLOURS = {0: "#3a4557", 1: "#f0a030", 2: "#2ecc71"}
BAND_COLOURS = ("rgba(46,204,113,0.25)", "rgba(246,195,67,0.25)", "rgba(240,160,48,0.25)")


@dataclass
class AirData:
    status: Status
    start: datetime
    end: datetime
    names: dict[str, str]
    compressors: list[Compressor]
    waste_heat: WasteHeat
    states: dict[str, list[tuple[datetime, float | None]]]  # last 24 h, minute buckets
    now: datetime


def layout(ctx: LayoutContext) -> list[Any]:
    return []  # everything on the page comes with its data


def load(read: Reader, q: PageQuery) -> AirData:
    return read(lambda conn: _read(conn, q))


def _read(conn: sa.Connection, q: PageQuery) -> AirData:
    site_id, now = q.site_id, q.now
    st = status(conn, site_id, now)
    start, end = q.window(st.timezone)
    kpis = window_kpis(conn, site_id, start, end, now)
    names = {m.id: m.name for m in list_meters(conn, site_id)}
    day = now - timedelta(hours=24)
    states = {c.meter_id: [(r[0], r[1]) for r in readings_series(conn, c.meter_id, "state", day, now, "1m")]
              for c in kpis.compressors}
    return AirData(st, start, end, names, kpis.compressors, kpis.waste_heat, states, now)


def grade_text(c: Compressor, lang: Lang) -> str:
    if c.gb19153_limits is None:
        return t("air.grade.none", lang)
    if c.gb19153_grade is None:
        measured = c.specific_power_loaded is not None
        return t("air.grade.worse" if measured else "air.grade.none", lang)
    return t("air.grade.value", lang, grade=c.gb19153_grade)


def band_figure(c: Compressor, lang: Lang) -> go.Figure:
    """The loaded specific power as a marker over the grade 1/2/3 bands (lower is better)."""
    fig = go.Figure()
    limits = c.gb19153_limits
    values = [*(limits or ()), c.specific_power_loaded or 0.0, c.specific_power_overall or 0.0]
    top = max(values) * 1.15 or 1.0
    if limits:
        lo = 0.0
        for i, limit in enumerate(limits):
            fig.add_shape(type="rect", x0=lo, x1=limit, y0=0, y1=1, yref="paper", line={"width": 0},
                          fillcolor=BAND_COLOURS[i], layer="below")
            fig.add_annotation(x=(lo + limit) / 2, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                               text=t("air.grade.value", lang, grade=i + 1), font={"size": 12})
            lo = limit
    for value, key, colour in ((c.specific_power_loaded, "air.sp_loaded", "#e6edf3"),
                               (c.specific_power_overall, "air.sp_overall", "#4da3ff")):
        if value is not None:
            fig.add_trace(go.Scatter(x=[value], y=[0.5], mode="markers", name=t(key, lang),
                                     marker={"size": 18, "color": colour, "symbol": "diamond"},
                                     hovertemplate="%{x:.2f} kW/(m³/min)<extra>" + t(key, lang) + "</extra>"))
    fig.update_layout(**base_layout(), height=130, showlegend=True,
                      xaxis={"range": [0, top], "title": {"text": "kW/(m³/min)"},
                             "gridcolor": "rgba(230,237,243,0.08)"},
                      yaxis={"visible": False, "range": [0, 1]},
                      legend={"orientation": "h", "y": -0.9})
    return fig


def timeline_figure(data: AirData, lang: Lang) -> go.Figure:
    """One row per compressor, a cell per minute coloured by state; minutes without data stay empty."""
    tz = ZoneInfo(data.status.timezone)
    fig = go.Figure()
    for code, key in STATE_KEYS.items():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=t(key, lang),
                                 marker={"color": STATE_COLOURS[code], "symbol": "square", "size": 12}))
    for c in data.compressors:
        rows = data.states.get(c.meter_id, [])
        for code, key in STATE_KEYS.items():
            # a minute is shown in a state only when it held that state throughout (avg == code)
            xs = [r[0].astimezone(tz).strftime("%Y-%m-%d %H:%M") for r in rows if r[1] == code]
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=[data.names.get(c.meter_id, c.meter_id)] * len(xs),
                                         mode="markers", showlegend=False, name=t(key, lang),
                                         marker={"color": STATE_COLOURS[code], "symbol": "line-ns-open",
                                                 "size": 22, "line": {"width": 3}},
                                         hovertemplate="%{x}<extra>" + t(key, lang) + "</extra>"))
    layout = base_layout() | {"margin": {"l": 200, "r": 24, "t": 24, "b": 40}}  # room for meter names
    fig.update_layout(**layout, height=90 + 60 * max(1, len(data.compressors)),
                      xaxis={"type": "date", "tickformat": "%H:%M", "gridcolor": "rgba(230,237,243,0.08)"},
                      yaxis={"type": "category"}, legend={"orientation": "h", "y": 1.15})
    return fig


def _fig_text(f: Figure, decimals: int, lang: Lang) -> tuple[str, str]:
    return format_number(f.value, decimals, lang), f.unit


def render(data: AirData, lang: Lang) -> list[Any]:
    if not data.compressors:
        return [html.P(t("air.none", lang), className="empty")]
    cards = []
    for c in data.compressors:
        load = c.load_ratio * 100 if c.load_ratio is not None else None
        cards.append(html.Div(className="card", id=f"air-card-{c.meter_id}", children=[
            html.H3(data.names.get(c.meter_id, c.meter_id), className="card-title"),
            html.Div(className="tiles", children=[
                figure_tile(f"air-sp-{c.meter_id}", t("air.sp_loaded", lang), c.specific_power_loaded,
                            "kW/(m³/min)", 2, lang, grade_text(c, lang)),
                figure_tile(f"air-load-{c.meter_id}", t("air.load_ratio", lang), load, "%", 1, lang),
                figure_tile(f"air-kwh-{c.meter_id}", t("air.energy", lang), c.energy_kwh.value, "kWh", 0,
                            lang,
                            coverage=c.energy_kwh.coverage),
                figure_tile(f"air-m3-{c.meter_id}", t("air.air", lang), c.air_m3, "m³", 0, lang),
            ]),
            dcc.Graph(figure=band_figure(c, lang), config={"displayModeBar": False}, className="band"),
        ]))
    wh = data.waste_heat
    heat = html.Div(className="card", children=[
        html.H3([t("heat.recovered", lang), " · ",
                 html.Span(t(f"basis.{wh.basis}", lang), className=f"label label-{wh.basis}",
                           id="air-heat-basis")], className="card-title"),
        html.Div(className="tiles", children=[
            figure_tile("air-heat-gj", t("heat.recovered", lang), wh.recovered_gj.value, "GJ", 2, lang,
                        coverage=wh.recovered_gj.coverage),
            figure_tile("air-heat-gas", t("heat.avoided_gas", lang), wh.avoided_fuel.value,
                        wh.avoided_fuel.unit, 1, lang),
            figure_tile("air-heat-co2", t("heat.avoided_co2", lang), wh.avoided_t_co2.value, "tCO₂e", 3,
                        lang),
            figure_tile("air-heat-tce", t("heat.avoided_tce", lang), wh.avoided_tce.value, "tce", 3, lang),
            figure_tile("air-heat-cny", t("heat.saved", lang), wh.saved_cny.value, "CNY", 0, lang),
        ]),
    ])
    timeline = html.Div(className="card", children=[
        html.H3(t("air.timeline", lang), className="card-title"),
        dcc.Graph(figure=timeline_figure(data, lang), config={"displayModeBar": False}),
    ])
    tz = data.status.timezone
    caption = html.P(f"{date_time(data.start, tz, lang, seconds=False)} – "
                     f"{date_time(data.end, tz, lang, seconds=False)}", className="window-caption")
    return [caption, html.Div(cards, className="cards"), heat, timeline]
