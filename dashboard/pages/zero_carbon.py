"""Zero carbon (零碳进程): the site's zero-carbon programme. Each target against its straight line
with the projection and its status, the net balance of a year as a waterfall (gross, green
instruments, offsets by type, net) and whether the year is neutral under the site's rule, and the
year's evaluations: zero-carbon factory level and its blockers, green factory score, cloud-model
grade and the checklists.

Every figure is an answer of ``lingtan.core.programme_service`` (docs/domain.md, "Zero-carbon
programme"), the one engine the API's programme routes answer from; the page draws and words them
and computes none of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import sqlalchemy as sa
from dash import dcc, html

from dashboard.data import Reader, Status, status
from dashboard.figures import base_layout
from dashboard.formatting import MISSING, format_number
from dashboard.i18n import CATALOG, Lang, t
from dashboard.page import Key, LayoutContext, PageQuery
from dashboard.sentences import match, name, says
from lingtan.core import programme_service
from lingtan.core.evaluations import CloudResult, Evaluations, GreenFactoryResult, ZeroCarbonResult
from lingtan.core.neutrality import NetBalance
from lingtan.core.programme_figures import FigureError, midpoint
from lingtan.core.programme_schema import ChecklistItem, ProgrammeError, ZeroCarbonProgramme
from lingtan.core.targets import TargetStatus, TargetValue

PREFIX = "zc"
YEAR = "zc-year"
BODY = "zc-body"
INPUTS: tuple[Key, ...] = ((YEAR, "value"),)
# The year list depends on the site's data, so the refresh writes the selector's options and the
# year it chose (the latest complete year until the reader picks another, or when the site changes).
OUTPUTS: tuple[Key, ...] = ((BODY, "children"), (YEAR, "options"), (YEAR, "value"))
# A refresh computes every year of the programme and the yearly figures move slowly: every 24th
# tick of the Overview's period, and at once when the reader picks a year.
REFRESH_EVERY = 24
STATUSES = ("on_track", "at_risk", "off_track", "unknown")
SOURCE_SYMBOLS = {"entered": "square", "closed": "circle", "provisional": "circle-open"}
CHECK_STATUSES = ("met", "partly", "not_met", "not_applicable")
UNVERIFIED = "{stars}★ thresholds are unverified ({source})"  # the core's blocker, a catalog template


@dataclass
class ZeroCarbonData:
    status: Status
    now: datetime
    programme: ZeroCarbonProgramme
    targets: list[TargetStatus] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    year: int | None = None
    balance: NetBalance | None = None
    evaluations: Evaluations | None = None
    problem: str | None = None  # what the programme could not answer, with the field it is about


def layout(ctx: LayoutContext) -> list[Any]:
    lang = ctx.lang
    return [
        html.H2(t("nav.zero_carbon", lang), id="zc-title", className="section-title zc-title"),
        html.Div(className="controls report-controls zc-controls", children=[
            html.Span(t("zc.year", lang), className="control-label"),
            dcc.Dropdown(id=YEAR, options=[], value=None, clearable=False, searchable=False,
                         className="control-year", placeholder=MISSING),
        ]),
        html.Div(id=BODY, className="page-body"),
    ]


def load(read: Reader, q: PageQuery) -> ZeroCarbonData:
    return read(lambda conn: _read(conn, q))


def _problem(exc: ProgrammeError | FigureError) -> str:
    return f"{'.'.join(map(str, exc.loc))}: {exc.message}"


def _read(conn: sa.Connection, q: PageQuery) -> ZeroCarbonData:
    st = status(conn, q.site_id, q.now)
    try:
        z, statuses = programme_service.targets(conn, q.site_id, q.now)
    except (ProgrammeError, FigureError) as exc:
        return ZeroCarbonData(st, q.now, ZeroCarbonProgramme(), problem=_problem(exc))
    data = ZeroCarbonData(st, q.now, z, statuses)
    if z == ZeroCarbonProgramme():
        return data
    this_year = q.now.astimezone(ZoneInfo(st.timezone)).year
    data.years = years_with_data(conn, q.site_id, z, statuses, this_year, q.now)
    data.year = chosen_year(q.inputs[0] if q.inputs else None, data.years, this_year)
    if data.year is not None:
        try:
            data.balance = programme_service.neutrality(conn, q.site_id, data.year, q.now)
            data.evaluations = programme_service.evaluate(conn, q.site_id, data.year, q.now)
        except (ProgrammeError, FigureError) as exc:
            data.problem = _problem(exc)
    return data


def years_with_data(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, statuses: list[TargetStatus],
                    this_year: int, now: datetime) -> list[int]:
    """The years the selector offers: every year a target has a value for (the engine's years with
    data, entered or metered), the entered years and the years offsets are claimed for. With no
    target to list them, the last and the running year count when the engine has data for them."""
    found = {int(v.label) for s in statuses for v in s.years if v.label.isdigit()}
    found |= {h.year for h in z.programme.history} | {o.period for o in z.offsets}
    if not statuses:
        for year in (this_year - 1, this_year):
            try:
                nb = programme_service.neutrality(conn, site_id, year, now)
            except (ProgrammeError, FigureError):
                continue
            if nb.source == "entered" or nb.coverage > 0:
                found.add(year)
    return sorted(y for y in found if y <= this_year)


def chosen_year(value: Any, years: list[int], this_year: int) -> int | None:
    """The reader's year if the site has data for it, else the latest complete year (the running
    year only when no complete year has data)."""
    try:
        picked = int(value) if value is not None else None
    except (TypeError, ValueError):
        picked = None
    if picked in years:
        return picked
    complete = [y for y in years if y < this_year]
    return max(complete) if complete else (max(years) if years else None)


# --- formatting -----------------------------------------------------------------------------------------


def shown(value: float | None, unit: str, lang: Lang) -> str:
    """A programme figure as the page writes it: shares in %, others with their unit."""
    if value is None:
        return MISSING
    if unit == "ratio":
        return f"{format_number(value * 100, 1, lang)} %"
    return f"{format_number(value, 1 if abs(value) >= 100 else 3, lang)} {unit}"


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _card(title: Any, children: list[Any], card_id: str, extra: str = "") -> html.Div:
    return html.Div(className=f"card {extra}".strip(), id=card_id,
                    children=[html.H3(title, className="card-title"), *children])


def _graph(fig: go.Figure | None, lang: Lang) -> Any:
    if fig is None:
        return html.P(t("missing.no_data", lang), className="empty")
    return dcc.Graph(figure=fig, config={"displayModeBar": False})


def _table(heads: list[str], rows: list[list[Any]], table_id: str, numeric_from: int = 1) -> html.Table:
    body = [html.Tr([html.Td(c, className="num" if i >= numeric_from else "") for i, c in enumerate(r)])
            for r in rows]
    return html.Table(className="table zc-table", id=table_id, children=[
        html.Thead(html.Tr([html.Th(h) for h in heads])), html.Tbody(body)])


def source_label(source: str, lang: Lang) -> str:
    key = f"zc.source.{source}"
    return t(key, lang) if key in CATALOG else source


# --- targets ------------------------------------------------------------------------------------------


def _complete(v: TargetValue, this_year: int) -> bool:
    return v.label.isdigit() and int(v.label) < this_year


def target_figure(ts: TargetStatus, this_year: int, timezone: str, lang: Lang) -> go.Figure | None:
    """The target's straight line, its complete years by source, the last 12 months, the projection
    (dashed) and the target value. A year's value sits on its year and every position the core
    gives in fractional years (a year's value at its middle, year + 0.5) moves by half a year with
    it, so the last 12 months ending in December sit on that year."""
    years = [v for v in ts.years if v.value is not None and _complete(v, this_year)]
    if not years and not ts.trajectory:
        return None
    fig = go.Figure()
    if ts.trajectory:
        fig.add_trace(go.Scatter(x=[p.year for p in ts.trajectory], y=[p.value for p in ts.trajectory],
                                 mode="lines", name=t("zc.trace.trajectory", lang),
                                 line={"color": "#8b9bb0", "width": 2}))
    for source, symbol in SOURCE_SYMBOLS.items():
        mine = [v for v in years if v.source == source]
        if mine:
            fig.add_trace(go.Scatter(
                x=[int(v.label) for v in mine], y=[v.value for v in mine], mode="markers",
                name=source_label(source, lang),
                marker={"symbol": symbol, "size": 10, "color": "#4da3ff",
                        "line": {"width": 2, "color": "#4da3ff"}}))
    last = ts.last_12_months
    if last is not None and last.value is not None:
        at = ts.projection.from_position if ts.projection else midpoint(last.start, last.end, timezone)
        pos = at - 0.5
        fig.add_trace(go.Scatter(x=[pos], y=[last.value], mode="markers", name=says(last.label, lang),
                                 marker={"symbol": "star", "size": 15, "color": "#f6c343"}))
        if ts.projection is not None:
            fig.add_trace(go.Scatter(x=[pos, ts.projection.year], y=[last.value, ts.projection.value],
                                     mode="lines+markers", name=t("zc.trace.projection", lang),
                                     line={"dash": "dash", "color": "#f6c343", "width": 2},
                                     marker={"size": [0, 8], "color": "#f6c343"}))
    if ts.target_value is not None:
        fig.add_trace(go.Scatter(x=[ts.target_year], y=[ts.target_value], mode="markers",
                                 name=t("zc.trace.target", lang),
                                 marker={"symbol": "x", "size": 14, "color": "#3ddc97"}))
    ratio = ts.unit == "ratio"
    fig.update_layout(**{**base_layout(), "margin": {"l": 64, "r": 16, "t": 8, "b": 32}}, height=260,
                      showlegend=True, legend={"orientation": "h", "y": -0.18, "font": {"size": 12}},
                      xaxis={"dtick": 1, "tickformat": "d", "gridcolor": "#1f2b42"},
                      yaxis={"tickformat": ".0%" if ratio else ",", "gridcolor": "#1f2b42",
                             "title": {"text": "" if ratio else ts.unit, "font": {"size": 12}},
                             "rangemode": "tozero"})
    return fig


def _fact(label: str, value: str) -> html.Div:
    return html.Div(className="zc-fact", children=[html.Span(label, className="zc-fact-label"),
                                                   html.Span(value, className="zc-fact-value")])


def target_card(ts: TargetStatus, this_year: int, timezone: str, lang: Lang) -> html.Div:
    sid = _safe_id(ts.id)
    title = [html.Span(ts.name, className="zc-target-name"),
             html.Span(t(f"zc.status.{ts.status}", lang), id=f"zc-status-{sid}",
                       className=f"zc-badge zc-badge-{ts.status}")]
    base = ts.base.value if ts.base else None
    facts = [
        _fact(t("zc.fact.kind", lang), t(f"zc.kind.{ts.kind}", lang) if f"zc.kind.{ts.kind}" in CATALOG
              else ts.kind),
        _fact(t("zc.fact.base", lang, year=ts.base_year), shown(base, ts.unit, lang)),
        _fact(t("zc.fact.target", lang, year=ts.target_year), shown(ts.target_value, ts.unit, lang)),
    ]
    if ts.latest_year is not None:
        facts.append(_fact(t("zc.fact.latest", lang, year=ts.latest_year.label,
                             source=source_label(ts.latest_year.source, lang)),
                           shown(ts.latest_year.value, ts.unit, lang)))
    if ts.projection is not None:
        facts.append(_fact(t("zc.fact.projection", lang, year=ts.projection.year),
                           shown(ts.projection.value, ts.unit, lang)))
    return _card(title, [
        html.Div(facts, className="zc-facts"),
        _graph(target_figure(ts, this_year, timezone, lang), lang),
        html.P(says(ts.reason, lang), className="zc-reason", id=f"zc-reason-{sid}"),
    ], f"zc-target-{sid}", "zc-target")


def targets_section(data: ZeroCarbonData, lang: Lang) -> html.Section:
    this_year = data.now.astimezone(ZoneInfo(data.status.timezone)).year
    if not data.targets:
        inner: Any = html.P(t("zc.targets.none", lang), className="empty", id="zc-targets-none")
    else:
        inner = html.Div([target_card(ts, this_year, data.status.timezone, lang) for ts in data.targets],
                         className="cards zc-targets")
    base = data.programme.programme.base_year
    note = t("zc.base_year", lang, year=base) if base is not None else ""
    return _section(t("zc.targets.title", lang), note, inner, "zc-targets-section")


def _section(title: str, note: str, inner: Any, section_id: str) -> html.Section:
    return html.Section(className="section", id=section_id, children=[
        html.Div([html.H2(title, className="section-title"), html.Span(note, className="section-note")],
                 className="section-heading"),
        inner,
    ])


# --- net balance --------------------------------------------------------------------------------------


def waterfall_figure(nb: NetBalance, lang: Lang) -> go.Figure | None:
    """Gross before instruments, the instruments, the residual the rule judges, the offsets by type
    and the net. The residual and the net are drawn at the core's values (absolute bars), not summed
    by plotly, and every bar's label is the core's figure."""
    if nb.gross_t is None or nb.net_t is None:
        return None
    bars: list[tuple[str, float, str]] = []
    if nb.rule == "iso14068_market" and nb.before_instruments_t is not None:
        bars.append((t("zc.wf.before", lang), nb.before_instruments_t, "absolute"))
        bars += [(t(f"zc.wf.instrument.{i.kind}", lang), -i.tco2e, "relative") for i in nb.instruments]
        if nb.instruments:
            bars.append((t("zc.wf.residual", lang), nb.gross_t, "absolute"))
    else:  # location-based: the instruments are not deducted, the gross is the residual
        bars.append((t("zc.wf.gross_location", lang), nb.gross_t, "absolute"))
    bars += [(offset_type(kind, lang), -q, "relative") for kind, q in nb.offsets_by_type.items()]
    bars.append((t("zc.wf.net", lang), nb.net_t, "absolute"))
    fig = go.Figure(go.Waterfall(
        x=[b[0] for b in bars], y=[b[1] for b in bars], measure=[b[2] for b in bars],
        text=[format_number(b[1], 1, lang) for b in bars], textposition="outside",
        cliponaxis=False, connector={"line": {"color": "#3a4557"}},
        decreasing={"marker": {"color": "#3ddc97"}}, increasing={"marker": {"color": "#ff5c5c"}},
        totals={"marker": {"color": "#4da3ff"}}, hoverinfo="x+text", name="tCO2e"))
    fig.update_layout(**{**base_layout(), "margin": {"l": 64, "r": 24, "t": 32, "b": 48}}, height=380,
                      showlegend=False, yaxis={"title": {"text": "tCO2e"}, "gridcolor": "#1f2b42",
                                               "tickformat": ","})
    return fig


def offset_type(kind: str, lang: Lang) -> str:
    key = f"zc.offset.{kind}"
    return t(key, lang) if key in CATALOG else kind


def neutral_line(nb: NetBalance, lang: Lang) -> html.P:
    verdict = "unknown" if nb.neutral is None else "yes" if nb.neutral else "no"
    return html.P(id="zc-neutral", className=f"zc-neutral zc-neutral-{verdict}", children=[
        html.Strong(t(f"zc.neutral.{verdict}", lang, year=nb.label, rule=t(f"zc.rule.{nb.rule}", lang))),
        html.Span(" · " + says(nb.reason, lang)),
    ])


def offsets_table(nb: NetBalance, lang: Lang) -> html.Table | None:
    if not nb.offsets:
        return None
    heads = [t(f"zc.col.{h}", lang) for h in ("offset", "type", "project", "vintage", "quantity", "retired",
                                             "serials")]
    rows = [[o.id, offset_type(o.type, lang), o.project, str(o.vintage), format_number(o.quantity_t, 1, lang),
             o.retired_on.isoformat(), o.serials] for o in nb.offsets]
    return _table(heads, rows, "zc-offsets", numeric_from=99)


def balance_section(data: ZeroCarbonData, lang: Lang) -> html.Section:
    nb = data.balance
    assert nb is not None
    cover = t("zc.balance.source", lang, source=source_label(nb.source, lang),
              pct=format_number(nb.coverage * 100, 1, lang))
    children: list[Any] = [neutral_line(nb, lang),
                           html.P(says(nb.rule_text, lang), className="zc-note")]
    if nb.rule == "iso14068_location" and nb.instruments:
        children.append(html.P(t("zc.wf.location_note", lang), className="zc-note"))
    children.append(html.Div(_graph(waterfall_figure(nb, lang), lang), id="zc-waterfall"))
    table = offsets_table(nb, lang)
    if table is not None:
        children.append(table)
    card = html.Div(className="card zc-balance", id="zc-balance", children=children)
    return _section(t("zc.balance.title", lang, year=nb.label), cover, card, "zc-balance-section")


# --- evaluations --------------------------------------------------------------------------------------


def _requirement(r: Any, lang: Lang) -> html.Span:
    sign = "≥" if r.direction == "min" else "≤"
    mark = "✓" if r.met else "✗"
    value, threshold = shown(r.value, r.unit, lang), shown(r.threshold, r.unit, lang)
    text = f"{name(r.name, lang)} {value} {sign} {threshold} {mark}"
    return html.Span(text, className="zc-req zc-req-met" if r.met else "zc-req zc-req-open")


def zero_carbon_card(zr: ZeroCarbonResult, lang: Lang) -> html.Div:
    reached = t("zc.zcf.reached", lang, stars=zr.stars) if zr.stars is not None else t("zc.zcf.none", lang)
    children: list[Any] = [html.P(reached, className="zc-level", id="zc-level")]
    if zr.next_stars is not None:
        blockers = []
        for b in zr.blockers:
            found = match(b)
            unverified = found is not None and found[0] == UNVERIFIED
            blockers.append(html.Li(says(b, lang), className="zc-unverified" if unverified else ""))
        children += [html.H4(t("zc.zcf.next", lang, stars=zr.next_stars), className="zc-subtitle"),
                     html.Ul(blockers, className="zc-blockers", id="zc-blockers")]
    else:
        children.append(html.P(t("zc.zcf.top", lang), className="zc-note"))
    rows = []
    for lv in zr.levels:
        rows.append([f"{lv.stars}★", html.Span([_requirement(r, lang) for r in lv.requirements]),
                     str(len(lv.checklist_open)),
                     html.Span(t("zc.verified" if lv.verified else "zc.unverified", lang), title=lv.source,
                               className="" if lv.verified else "zc-unverified"),
                     t("zc.yes" if lv.reached else "zc.no", lang)])
    heads = [t(f"zc.col.{h}", lang)
             for h in ("level", "requirements", "checklist_open", "thresholds", "reached")]
    children.append(_table(heads, rows, "zc-levels", numeric_from=99))
    return _card(t("zc.zcf.title", lang), children, "zc-zero-carbon", "zc-eval")


def green_factory_card(gf: GreenFactoryResult, lang: Lang) -> html.Div:
    if not gf.indicators:
        return _card(t("zc.gf.title", lang), [html.P(t("zc.gf.none", lang), className="empty")],
                     "zc-green-factory", "zc-eval")
    score = format_number(gf.score, 1, lang) if gf.score is not None else MISSING
    rows = [[name(ln.indicator, lang), shown(ln.value, ln.unit, lang), shown(ln.baseline, ln.unit, lang),
             shown(ln.leading, ln.unit, lang), format_number(ln.weight, 2, lang),
             format_number(ln.score * 100, 1, lang) if ln.score is not None else MISSING]
            for ln in gf.indicators]
    heads = [t(f"zc.col.{h}", lang) for h in ("indicator", "value", "baseline", "leading", "weight", "score")]
    return _card(t("zc.gf.title", lang), [
        html.P([t("zc.gf.score", lang) + " ", html.Strong(score, id="zc-gf-score"), " / 100"],
               className="zc-level"),
        _table(heads, rows, "zc-gf-indicators"),
        html.P(says(gf.scoring, lang), className="zc-note"),
    ], "zc-green-factory", "zc-eval")


def cloud_card(cr: CloudResult | None, lang: Lang) -> html.Div:
    title = t("zc.cloud.title", lang)
    if cr is None:
        return _card(title, [html.P(t("zc.cloud.none", lang), className="empty", id="zc-cloud-none")],
                     "zc-cloud", "zc-eval")
    notes = [html.Li(says(n, lang)) for n in cr.notes]
    window = f"{cr.periods[0]} – {cr.periods[-1]}" if cr.periods else ""
    key = "zc.cloud.years" if cr.period == "year" else "zc.cloud.months"
    children: list[Any] = [html.P(t(key, lang, n=len(cr.periods), window=window),
                                  className="zc-note")]
    if not cr.indicators:  # not enough months with a value: the notes say which
        children += [html.P(t("zc.cloud.no_grade", lang), className="zc-level", id="zc-cloud-grade"),
                     html.Ul(notes, className="zc-notes")]
        return _card(title, children, "zc-cloud", "zc-eval")
    children.append(html.P([t("zc.cloud.grade", lang) + " ",
                            html.Strong(cr.grade or MISSING, id="zc-cloud-grade")], className="zc-level"))
    children.append(_table([t("zc.col.grade", lang), "U", t("zc.col.share", lang)],
                           [[g, format_number(u, 3, lang), f"{format_number(s * 100, 1, lang)} %"]
                            for g, u, s in zip(cr.grades, cr.u, cr.shares, strict=True)], "zc-cloud-u"))
    children.append(_table([t("zc.col.indicator", lang), t("zc.col.weight", lang), "Ex"],
                           [[name(i.indicator, lang), format_number(i.weight, 2, lang),
                             shown(i.ex, i.unit, lang)] for i in cr.indicators], "zc-cloud-weights"))
    if notes:
        children.append(html.Ul(notes, className="zc-notes"))
    children.append(html.P(says(cr.method, lang), className="zc-note"))
    return _card(title, children, "zc-cloud", "zc-eval")


def _counts(items: list[ChecklistItem], lang: Lang) -> str:
    if not items:
        return t("zc.checklist.empty", lang)
    parts = [f"{t(f'zc.check.{s}', lang)} {sum(1 for c in items if c.status == s)}" for s in CHECK_STATUSES
             if any(c.status == s for c in items)]
    return t("zc.checklist.count", lang, n=len(items)) + " · " + " · ".join(parts)


def checklists_card(ev: Evaluations, lang: Lang) -> html.Div:
    rows = [[t("zc.zcf.title", lang), _counts(ev.zero_carbon.checklist, lang)],
            [t("zc.gf.title", lang), _counts(ev.green_factory.checklist, lang)]]
    heads = [t("zc.col.evaluation", lang), t("zc.col.items", lang)]
    return _card(t("zc.checklist.title", lang), [_table(heads, rows, "zc-checklists", numeric_from=99)],
                 "zc-checklist", "zc-eval")


def evaluations_section(ev: Evaluations, lang: Lang) -> html.Section:
    source = source_label(ev.zero_carbon.source, lang)
    notes = " · ".join([source, *(says(n, lang) for n in ev.notes)])
    cards = html.Div(className="cards zc-evals", children=[
        zero_carbon_card(ev.zero_carbon, lang), green_factory_card(ev.green_factory, lang),
        cloud_card(ev.cloud, lang), checklists_card(ev, lang)])
    return _section(t("zc.eval.title", lang, year=ev.year), notes, cards, "zc-evaluations-section")


# --- the page -----------------------------------------------------------------------------------------


def render(data: ZeroCarbonData, lang: Lang) -> dict[Key, Any]:
    options = [{"label": str(y), "value": y} for y in reversed(data.years)]
    return {(BODY, "children"): body(data, lang), (YEAR, "options"): options, (YEAR, "value"): data.year}


def body(data: ZeroCarbonData, lang: Lang) -> list[Any]:
    if data.programme == ZeroCarbonProgramme() and data.problem is None:
        return [html.Div(className="card zc-none", id="zc-none", children=[
            html.P(t("zc.none", lang), className="empty"),
            html.P(t("zc.none.hint", lang), className="zc-note"),
        ])]
    out: list[Any] = []
    if data.problem is not None:
        out.append(html.P(t("zc.problem", lang, problem=data.problem), className="banner", id="zc-problem"))
    if data.programme != ZeroCarbonProgramme():
        out.append(targets_section(data, lang))
    if data.year is None and data.problem is None:
        out.append(html.P(t("zc.years.none", lang), className="empty", id="zc-years-none"))
    if data.balance is not None:
        out.append(balance_section(data, lang))
    if data.evaluations is not None:
        out.append(evaluations_section(data.evaluations, lang))
    return out
