"""Reports: the month or year GHG inventory and energy balance, shown as tables and downloaded
as CSV or XLSX — the same tables, through the same writers, as the API's report routes."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import sqlalchemy as sa
from dash import dcc, html

from dashboard.formatting import format_number
from dashboard.i18n import Lang, report_term, t
from lingtan.core import closings, report_formats
from lingtan.core.report_formats import Num, Table

PREFIX = "reports"
Kind = Literal["ghg-inventory", "energy-balance"]
KINDS: dict[str, str] = {"ghg-inventory": "reports.ghg", "energy-balance": "reports.balance"}


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
