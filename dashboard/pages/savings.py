"""Savings (节能量): the measured savings of a site's retrofit projects and its energy baseline.

Per project: the adjusted baseline against the actual energy of every reporting point, the
cumulative savings with the stated uncertainty, the CUSUM, and the totals (avoided energy ± its
uncertainty at the project's confidence, tce, tCO2e, CNY, against the claim, and whether the
baseline model is adequate, with the rules it fails named). Then the site's first energy baseline:
actual against expected since the baseline and the ratio EnPI.

Every figure is an answer of ``lingtan.core.savings_service`` (docs/domain.md, "Baselines and
savings"), the engine the API's savings routes answer from. The page computes none of them: the
cumulative savings of a point is the service's CUSUM with the sign turned (CUSUM = Σ(actual −
expected), so Σ(expected − actual) = −CUSUM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
import sqlalchemy as sa
from dash import dcc, html

from dashboard.data import Reader, Status, status
from dashboard.figures import base_layout
from dashboard.formatting import MISSING, format_number
from dashboard.i18n import Lang, t
from dashboard.page import Key, LayoutContext, PageQuery
from dashboard.sentences import says
from lingtan.core import savings_service
from lingtan.core.savings_schema import SavingsError
from lingtan.core.savings_service import BaselineAnswer, Fit, PointValue, ProjectSavings, ProjectSummary

PREFIX = "sv"
PROJECT = "sv-project"
BODY = "sv-body"
INPUTS: tuple[Key, ...] = ((PROJECT, "value"),)
# The project list is the site's, so the refresh writes the selector's options and the project it
# chose (the first until the reader picks another, or when the site changes).
OUTPUTS: tuple[Key, ...] = ((BODY, "children"), (PROJECT, "options"), (PROJECT, "value"))
# The points are daily and a refresh fits every model again: every 24th tick of the Overview's
# period, as the Zero carbon page, and at once when the reader picks a project.
REFRESH_EVERY = 24
ACTUAL, EXPECTED, SAVED, CUSUM = "#4da3ff", "#8b9bb0", "#3ddc97", "#f5b942"


@dataclass
class SavingsData:
    status: Status
    now: datetime
    site_id: str
    projects: list[ProjectSummary] = field(default_factory=list)
    project: str | None = None
    savings: ProjectSavings | None = None
    problem: str | None = None  # why the chosen project has no answer, with the field it is about
    baseline: BaselineAnswer | None = None
    baseline_problem: str | None = None
    has_baselines: bool = False


def layout(ctx: LayoutContext) -> list[Any]:
    lang = ctx.lang
    return [
        html.H2(t("nav.savings", lang), id="sv-title", className="section-title zc-title"),
        html.Div(className="controls report-controls zc-controls", children=[
            html.Span(t("sv.project", lang), className="control-label"),
            dcc.Dropdown(id=PROJECT, options=[], value=None, clearable=False, searchable=False,
                         className="control-project", placeholder=MISSING),
        ]),
        html.Div(id=BODY, className="page-body"),
    ]


def load(read: Reader, q: PageQuery) -> SavingsData:
    return read(lambda conn: _read(conn, q))


def _problem(exc: SavingsError) -> str:
    return f"{'.'.join(map(str, exc.loc))}: {exc.message}"


def chosen_project(value: Any, ids: list[str]) -> str | None:
    """The reader's project if the site has it, else the first."""
    return value if value in ids else (ids[0] if ids else None)


def _read(conn: sa.Connection, q: PageQuery) -> SavingsData:
    st = status(conn, q.site_id, q.now)
    doc = savings_service.load_savings(conn, q.site_id)
    data = SavingsData(st, q.now, q.site_id, savings_service.projects(conn, q.site_id),
                       has_baselines=bool(doc.energy_baselines))
    data.project = chosen_project(q.inputs[0] if q.inputs else None, [p.id for p in data.projects])
    if data.project is not None:
        try:
            data.savings = savings_service.project_savings(conn, q.site_id, data.project, q.now)
        except SavingsError as exc:
            data.problem = _problem(exc)
    if doc.energy_baselines:
        try:
            data.baseline = savings_service.baseline(conn, q.site_id, doc.energy_baselines[0].id, q.now)
        except SavingsError as exc:
            data.baseline_problem = _problem(exc)
    return data


# --- formatting -----------------------------------------------------------------------------------------


def energy(value: float | None, unit: str, lang: Lang) -> str:
    return MISSING if value is None else f"{format_number(value, 0, lang)} {unit}"


def pct(value: float | None, lang: Lang) -> str:
    return MISSING if value is None else f"{format_number(value * 100, 1, lang)} %"


def _fact(label: str, value: str, fact_id: str) -> html.Div:
    return html.Div(className="zc-fact", children=[html.Span(label, className="zc-fact-label"),
                                                   html.Span(value, className="zc-fact-value", id=fact_id)])


def _card(title: Any, children: list[Any], card_id: str, extra: str = "") -> html.Div:
    return html.Div(className=f"card {extra}".strip(), id=card_id,
                    children=[html.H3(title, className="card-title"), *children])


def _section(title: str, note: str, inner: Any, section_id: str) -> html.Section:
    return html.Section(className="section", id=section_id, children=[
        html.Div([html.H2(title, className="section-title"), html.Span(note, className="section-note")],
                 className="section-heading"),
        inner,
    ])


def _graph(fig: go.Figure | None, graph_id: str, lang: Lang) -> Any:
    if fig is None:
        return html.P(t("missing.no_data", lang), className="empty", id=graph_id)
    return html.Div(dcc.Graph(figure=fig, config={"displayModeBar": False}), id=graph_id)


def _layout(fig: go.Figure, unit: str, height: int = 300) -> go.Figure:
    fig.update_layout(**{**base_layout(), "margin": {"l": 72, "r": 16, "t": 8, "b": 40}}, height=height,
                      showlegend=True, legend={"orientation": "h", "y": -0.2, "font": {"size": 12}},
                      xaxis={"gridcolor": "#1f2b42"},
                      yaxis={"gridcolor": "#1f2b42", "tickformat": ",", "title": {"text": unit,
                                                                                  "font": {"size": 12}}})
    return fig


# --- charts ---------------------------------------------------------------------------------------------


def actual_figure(points: list[PointValue], unit: str, lang: Lang) -> go.Figure | None:
    """Actual energy per point as bars, the baseline the model expects for it as a line."""
    if not points:
        return None
    x = [p.label for p in points]
    fig = go.Figure([
        go.Bar(x=x, y=[p.actual for p in points], name=t("sv.trace.actual", lang), marker={"color": ACTUAL}),
        go.Scatter(x=x, y=[p.expected for p in points], mode="lines", name=t("sv.trace.expected", lang),
                   line={"color": EXPECTED, "width": 2}),
    ])
    return _layout(fig, unit)


def cumulative_figure(ps: ProjectSavings, lang: Lang) -> go.Figure | None:
    """Σ(expected − actual) to each point, which is the service's CUSUM with its sign turned. The
    uncertainty is drawn only where the service states it: as an error bar on the whole period's
    avoided energy (± at the project's confidence), with the claim for the period beside it. No
    band is drawn through the earlier points, because the service states none for them."""
    if not ps.points:
        return None
    x = [p.label for p in ps.points]
    fig = go.Figure(go.Scatter(x=x, y=[-p.cusum for p in ps.points], mode="lines",
                               name=t("sv.trace.cumulative", lang), line={"color": SAVED, "width": 2}))
    if ps.avoided is not None:
        # the total includes the non-routine adjustments, which the points do not
        error = {"type": "data", "array": [ps.uncertainty], "visible": True, "color": SAVED,
                 "thickness": 2, "width": 8} if ps.uncertainty is not None else None
        conf = format_number(ps.confidence * 100, 0, lang)
        fig.add_trace(go.Scatter(x=[x[-1]], y=[ps.avoided], mode="markers", error_y=error,
                                 name=t("sv.trace.avoided", lang, pct=conf),
                                 marker={"color": SAVED, "size": 10, "symbol": "diamond"}))
    if ps.claimed_for_period is not None:
        fig.add_trace(go.Scatter(x=[x[-1]], y=[ps.claimed_for_period], mode="markers",
                                 name=t("sv.trace.claimed", lang),
                                 marker={"color": "#ff5c5c", "size": 12, "symbol": "x"}))
    return _layout(fig, ps.unit)


def cusum_figure(points: list[PointValue], unit: str, lang: Lang) -> go.Figure | None:
    if not points:
        return None
    fig = go.Figure(go.Scatter(x=[p.label for p in points], y=[p.cusum for p in points], mode="lines",
                               name=t("sv.trace.cusum", lang), line={"color": CUSUM, "width": 2}))
    fig.add_hline(y=0, line={"color": "#3a4557", "width": 1})
    return _layout(fig, unit, 260)


# --- the project -------------------------------------------------------------------------------------------


def adequacy(f: Fit | None, lang: Lang, fact_id: str) -> html.Div:
    """Pass or fail, with the failed rules named, and every rule with its value and limit."""
    if f is None:
        return html.P(t("sv.fit.none", lang), className="zc-neutral zc-neutral-unknown", id=fact_id)
    verdict_class = f"zc-neutral zc-neutral-{'yes' if f.adequate else 'no'}"
    verdict = html.P(id=fact_id, className=verdict_class, children=[
        html.Strong(t("sv.fit.pass" if f.adequate else "sv.fit.fail", lang)),
        html.Span("" if f.adequate else " · " + ", ".join(says(x, lang) for x in f.failed)),
    ])
    rows = [html.Tr([html.Td(says(c.name, lang)), html.Td(format_number(c.value, 3, lang), className="num"),
                     html.Td(format_number(c.limit, 3, lang), className="num"),
                     html.Td("✓" if c.passed else "✗",
                             className="zc-req-met" if c.passed else "zc-unverified")])
            for c in f.criteria]
    heads = [t(f"sv.col.{h}", lang) for h in ("rule", "value", "limit", "passed")]
    table = html.Table(className="table zc-table", id=f"{fact_id}-rules", children=[
        html.Thead(html.Tr([html.Th(h) for h in heads])), html.Tbody(rows)])
    fit = t("sv.fit.stats", lang, n=f.n, r2=format_number(f.r2, 3, lang),
            cv=format_number(f.cv_rmse_pct, 1, lang))
    return html.Div([verdict, html.P(fit, className="zc-note"), table])


def totals_card(ps: ProjectSavings, lang: Lang) -> html.Div:
    u = ps.unit
    c = ps.converted
    conf = format_number(ps.confidence * 100, 0, lang)
    avoided = MISSING if ps.avoided is None else (
        f"{energy(ps.avoided, u, lang)} ± {format_number(ps.uncertainty, 0, lang)}"
        if ps.uncertainty is not None else energy(ps.avoided, u, lang))
    facts = [
        _fact(t("sv.fact.avoided", lang, pct=conf), avoided, "sv-avoided"),
        _fact(t("sv.fact.fractional", lang), pct(ps.fractional_uncertainty, lang), "sv-fractional"),
        _fact(t("sv.fact.adjusted_baseline", lang), energy(ps.adjusted_baseline, u, lang), "sv-adjusted"),
        _fact(t("sv.fact.reporting", lang), energy(ps.reporting_energy, u, lang), "sv-reporting"),
        _fact(t("sv.fact.adjustments", lang), energy(ps.adjustments, u, lang), "sv-adjustments"),
        _fact("tce", MISSING if c is None or c.tce is None else format_number(c.tce, 2, lang), "sv-tce"),
        _fact(t("sv.fact.co2_location", lang),
              MISSING if c is None or c.tco2e_location is None else format_number(c.tco2e_location, 2, lang),
              "sv-co2-location"),
        _fact(t("sv.fact.co2_market", lang),
              MISSING if c is None or c.tco2e_market is None else format_number(c.tco2e_market, 2, lang),
              "sv-co2-market"),
        _fact("CNY", MISSING if c is None or c.cny is None else format_number(c.cny, 0, lang), "sv-cny"),
        _fact(t("sv.fact.claimed", lang), energy(ps.claimed_for_period, u, lang), "sv-claimed"),
        _fact(t("sv.fact.vs_claimed", lang), pct(ps.measured_vs_claimed, lang), "sv-vs-claimed"),
    ]
    children: list[Any] = [html.Div(facts, className="zc-facts")]
    if ps.uncertainty is not None:
        below = "sv.half.yes" if ps.uncertainty_below_half else "sv.half.no"
        children.append(html.P(t(below, lang, a=format_number(ps.a, 2, lang)), className="zc-note",
                               id="sv-half"))
    if c is not None:
        children.append(html.P(says(c.basis, lang), className="zc-note", id="sv-basis"))
    children.append(html.H4(t("sv.fit.title", lang), className="zc-subtitle"))
    children.append(adequacy(ps.fit, lang, "sv-adequacy"))
    notes = [*ps.notes, *(t("sv.static", lang, what=s) for s in ps.static_factors)]
    if ps.left_out:
        notes.append(t("sv.left_out", lang, n=len(ps.left_out), which="; ".join(ps.left_out[:5])))
    if notes:
        children.append(html.Ul([html.Li(says(n, lang)) for n in notes], className="zc-notes", id="sv-notes"))
    return _card(t("sv.totals.title", lang), children, "sv-totals", "zc-eval")


def project_section(data: SavingsData, lang: Lang) -> html.Section:
    summary = next(p for p in data.projects if p.id == data.project)
    ps = data.savings
    note = t("sv.project.note", lang, option=summary.option, boundary=summary.boundary)
    if ps is None:
        inner: Any = html.P(t("sv.problem", lang, problem=data.problem), className="banner", id="sv-problem")
        return _section(summary.name, note, inner, "sv-project-section")
    note = t("sv.project.period", lang, option=ps.option, boundary=summary.boundary,
             first=ps.period[0], last=ps.period[1])
    u = ps.unit
    cards = html.Div(className="cards sv-cards", children=[
        totals_card(ps, lang),
        _card(t("sv.actual.title", lang), [
            _graph(actual_figure(ps.points, u, lang), "sv-actual", lang),
            html.P(t("sv.actual.note", lang), className="zc-note")], "sv-actual-card", "zc-eval"),
        _card(t("sv.cumulative.title", lang), [
            _graph(cumulative_figure(ps, lang), "sv-cumulative", lang),
            html.P(t("sv.cumulative.note", lang, pct=format_number(ps.confidence * 100, 0, lang)),
                   className="zc-note")], "sv-cumulative-card", "zc-eval"),
        _card(t("sv.cusum.title", lang), [
            _graph(cusum_figure(ps.points, u, lang), "sv-cusum", lang),
            html.P(t("sv.cusum.note", lang), className="zc-note")], "sv-cusum-card", "zc-eval"),
    ])
    return _section(ps.name, note, cards, "sv-project-section")


# --- the site's energy baseline ------------------------------------------------------------------------


def enpi_section(data: SavingsData, lang: Lang) -> html.Section:
    b = data.baseline
    if b is None:
        inner: Any = html.P(t("sv.problem", lang, problem=data.baseline_problem), className="banner",
                            id="sv-baseline-problem")
        return _section(t("sv.enpi.title", lang), "", inner, "sv-enpi-section")
    ratio = MISSING if b.enpi_ratio is None else format_number(b.enpi_ratio, 3, lang)
    note = t("sv.enpi.note", lang, name=b.name, first=b.baseline_period[0], last=b.baseline_period[1])
    children: list[Any] = [
        html.P([t("sv.enpi.ratio", lang) + " ", html.Strong(ratio, id="sv-enpi-ratio")],
               className="zc-level"),
        html.P(t("sv.enpi.ratio_note", lang), className="zc-note"),
        _graph(actual_figure(b.since, b.unit, lang), "sv-enpi", lang),
        html.H4(t("sv.fit.title", lang), className="zc-subtitle"),
        adequacy(b.fit, lang, "sv-enpi-adequacy"),
    ]
    if b.notes:
        children.append(html.Ul([html.Li(says(n, lang)) for n in b.notes], className="zc-notes"))
    card = _card(b.name, children, "sv-enpi-card", "zc-eval")
    return _section(t("sv.enpi.title", lang), note, card, "sv-enpi-section")


# --- the page -----------------------------------------------------------------------------------------


def render(data: SavingsData, lang: Lang) -> dict[Key, Any]:
    options = [{"label": p.name, "value": p.id} for p in data.projects]
    return {(BODY, "children"): body(data, lang), (PROJECT, "options"): options,
            (PROJECT, "value"): data.project}


def body(data: SavingsData, lang: Lang) -> list[Any]:
    if not data.projects and not data.has_baselines:
        return [html.Div(className="card zc-none", id="sv-none", children=[
            html.P(t("sv.none", lang), className="empty"),
            html.P(t("sv.none.hint", lang, site=data.site_id), className="zc-note"),
        ])]
    out: list[Any] = []
    if data.project is not None:
        out.append(project_section(data, lang))
    else:
        out.append(html.P(t("sv.projects.none", lang), className="empty", id="sv-projects-none"))
    if data.has_baselines:
        out.append(enpi_section(data, lang))
    return out
