"""Reports: the month or year GHG inventory and energy balance, shown as tables and downloaded
as CSV or XLSX — the same tables, through the same writers, as the API's report routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import dash
import sqlalchemy as sa
from dash import Input, Output, State, ctx, dcc, html

from dashboard.data import Reader, Status, status
from dashboard.formatting import format_number
from dashboard.i18n import Lang, report_term, t
from dashboard.page import LayoutContext, PageQuery
from lingtan.core import closings, report_formats
from lingtan.core.queries import get_site
from lingtan.core.report_formats import Num, Table
from lingtan.kernel import clock

PREFIX = "reports"
INPUTS = (("report-kind", "value"), ("report-period", "value"), ("report-date", "date"))
Kind = Literal["ghg-inventory", "energy-balance"]
KINDS: dict[str, str] = {"ghg-inventory": "reports.ghg", "energy-balance": "reports.balance"}


@dataclass
class ReportsData:
    status: Status
    tables: list[Table]


def layout(ctx: LayoutContext) -> list[Any]:
    return [controls(ctx.lang, ctx.today)]


def load(read: Reader, q: PageQuery) -> ReportsData:
    kind, period, day = q.inputs

    def work(conn: sa.Connection) -> ReportsData:
        st = status(conn, q.site_id, q.now)
        tabs, _ = tables(conn, q.site_id, kind or "ghg-inventory", period or "month",
                         report_day(day, q.now, st.timezone))
        return ReportsData(st, tabs)

    return read(work)


def render(data: ReportsData, lang: Lang) -> list[Any]:
    return html_tables(data.tables, lang)


def report_day(value: str | None, now: datetime, timezone: str) -> date:
    """The picked date; none (or a bad one): today on the site's own calendar, the day its reports mean."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    try:
        return date.fromisoformat(value[:10]) if value else today
    except ValueError:
        return today


def tables(conn: sa.Connection, site_id: str, kind: str, period: str, day: date | None
           ) -> tuple[list[Table], str]:
    """(tables, period label) of one report: a closed period's figures as closed, with the status
    line and any restatement, exactly as the API's files carry them."""
    report = closings.period_report(conn, site_id, "energy-balance" if kind == "energy-balance"
                                    else "ghg-inventory", period, day)
    return closings.report_tables(report), report.period.label


def download(conn: sa.Connection, site_id: str, kind: str, period: str, day: date | None,
             fmt: Literal["csv", "xlsx"]) -> dict[str, Any]:
    """What dcc.Download sends: the file the API route would send for the same query."""
    tabs, label = tables(conn, site_id, kind, period, day)
    body, media_type = report_formats.render(tabs, fmt)
    return dcc.send_bytes(body, report_formats.filename(site_id, kind, label, fmt), type=media_type)


def _cell(v: Any, lang: Lang, fmt: str | None) -> str:
    if isinstance(v, Num):
        v, fmt = v.value, v.fmt
    if isinstance(v, float | int) and not isinstance(v, bool) and fmt and fmt.endswith("%"):
        return format_number(v * 100, 1, lang) + " %"  # a ratio column, as the XLSX shows it
    if isinstance(v, float):
        return format_number(v, 3, lang)
    return "" if v is None else report_term(str(v), lang)


def html_tables(tabs: list[Table], lang: Lang) -> list[Any]:
    """The report's tables as the page shows them: the same rows as the files, with the fixed
    words in the page's language and numbers formatted for it."""
    out: list[Any] = []
    for tab in tabs:
        fmts = [c.fmt for c in tab.columns]
        out.append(html.H3(report_term(tab.name, lang), className="card-title"))
        out.append(html.Table(className="table report", children=[
            html.Thead(html.Tr([html.Th(report_term(c.header, lang)) for c in tab.columns])),
            html.Tbody([html.Tr([html.Td(_cell(v, lang, f)) for v, f in zip(row, fmts, strict=False)])
                        for row in tab.rows]),
        ]))
    return out


def controls(lang: Lang, today: date) -> html.Div:
    return html.Div(className="controls report-controls", children=[
        html.Div([html.Span(t("reports.kind", lang), className="control-label"),
                  dcc.RadioItems(id="report-kind", inline=True, value="ghg-inventory",
                                 options=[{"label": t(k, lang), "value": v} for v, k in KINDS.items()])]),
        html.Div([html.Span(t("reports.period", lang), className="control-label"),
                  dcc.RadioItems(id="report-period", inline=True, value="month",
                                 options=[{"label": t("reports.month", lang), "value": "month"},
                                          {"label": t("reports.year", lang), "value": "year"}])]),
        html.Div([html.Span(t("reports.date", lang), className="control-label"),
                  dcc.DatePickerSingle(id="report-date", date=today.isoformat(),
                                       display_format="YYYY-MM-DD")]),
        html.Button(t("reports.csv", lang), id="report-csv", n_clicks=0, className="button"),
        html.Button(t("reports.xlsx", lang), id="report-xlsx", n_clicks=0, className="button"),
        dcc.Download(id="report-download"),
    ])


def actions(app: dash.Dash, read: Reader, default_site: str) -> None:
    """The CSV and XLSX buttons: the file the API's report route sends for the same query."""

    @app.callback(Output("report-download", "data"), Input("report-csv", "n_clicks"),
                  Input("report-xlsx", "n_clicks"), State("ctl-site", "value"), State("report-kind", "value"),
                  State("report-period", "value"), State("report-date", "date"), prevent_initial_call=True)
    def _download(_csv: int, _xlsx: int, site: str | None, kind: str | None, period: str | None,
                  day: str | None) -> Any:
        fmt = "xlsx" if ctx.triggered_id == "report-xlsx" else "csv"
        site_id = site or default_site
        return read(lambda conn: download(
            conn, site_id, kind or "ghg-inventory", period or "month",
            report_day(day, clock.now(), get_site(conn, site_id).timezone), fmt))
