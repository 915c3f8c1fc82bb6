"""Alerts: what is firing or pending now, and the recent history (fired, resolved, acknowledged).
Engineers acknowledge a firing alert here, which stops its re-notification; viewers only read."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dash
import sqlalchemy as sa
from dash import ALL, Input, Output, State, ctx, html, no_update

from dashboard import access
from dashboard.data import Reader, Status, status
from dashboard.formatting import date_time, format_number
from dashboard.i18n import CATALOG, DEFAULT, Lang, pick, t
from dashboard.page import LayoutContext, PageQuery
from lingtan.core.alerts.store import Event, StateRow, list_events, list_rules, list_states
from lingtan.kernel import clock

log = logging.getLogger(__name__)
PREFIX = "alerts"
RECENT = 50


@dataclass
class AlertsData:
    status: Status
    active: list[StateRow]
    names: dict[int, str]
    severities: dict[int, str]
    recent: list[Event]
    can_ack: bool = False  # an engineer may acknowledge a firing alert

    @property
    def timezone(self) -> str:
        return self.status.timezone


def layout(ctx: LayoutContext) -> list[Any]:
    return []  # everything on the page comes with its data


def load(read: Reader, q: PageQuery) -> AlertsData:
    return read(lambda conn: _read(conn, q))


def _read(conn: sa.Connection, q: PageQuery) -> AlertsData:
    st = status(conn, q.site_id, q.now)
    rules, _ = list_rules(conn, limit=1000, offset=0)
    names = {r.id: str(r.definition.get("name") or f"#{r.id}") for r in rules}
    severities = {r.id: str(r.definition.get("severity") or "") for r in rules}
    active = [s for s in list_states(conn) if s.state in ("pending", "firing")]
    recent, _ = list_events(conn, RECENT, 0)
    return AlertsData(st, active, names, severities, recent, q.may("engineer"))


def _ack_cell(s: StateRow, lang: Lang, can_ack: bool) -> Any:
    if s.acked_by:
        return t("alerts.acked", lang, by=s.acked_by)
    if not can_ack or s.state != "firing":
        return ""
    return html.Button(t("alerts.ack", lang), n_clicks=0, className="button button-small",
                       id={"type": "alert-ack", "rule": s.rule_id, "subject": s.subject})


def render(data: AlertsData, lang: Lang) -> list[Any]:
    can_ack = data.can_ack
    out: list[Any] = [html.H2(t("alerts.active", lang), className="section-title")]
    if not data.active:
        out.append(html.P(t("alerts.empty", lang), className="empty", id="alerts-active-empty"))
    else:
        out.append(html.Table(className="table", id="alerts-active", children=[
            html.Thead(html.Tr([html.Th(t(k, lang)) for k in (
                "alerts.rule", "alerts.subject", "alerts.state", "alerts.since", "alerts.value",
                "alerts.ack_col")])),
            html.Tbody([html.Tr(className=f"row-{s.state}", children=[
                html.Td(data.names.get(s.rule_id, f"#{s.rule_id}")), html.Td(s.subject),
                html.Td(t(f"alerts.state.{s.state}", lang), className=f"state state-{s.state}"),
                html.Td(date_time(s.since, data.timezone, lang)),
                html.Td(format_number(s.last_value, 2, lang)), html.Td(_ack_cell(s, lang, can_ack)),
            ]) for s in data.active]),
        ]))
    out.append(html.H2(t("alerts.recent", lang), className="section-title"))
    if not data.recent:
        out.append(html.P(t("alerts.empty", lang), className="empty"))
    else:
        out.append(html.Table(className="table", id="alerts-recent", children=[
            html.Thead(html.Tr([html.Th(t(k, lang)) for k in (
                "alerts.time", "alerts.rule", "alerts.subject", "alerts.event", "alerts.value",
                "alerts.threshold")])),
            html.Tbody([html.Tr(className=f"row-{e.kind} severity-{e.severity}", children=[
                html.Td(date_time(e.time, data.timezone, lang)), html.Td(e.rule_name), html.Td(e.subject),
                html.Td(t(f"alerts.kind.{e.kind}", lang) if f"alerts.kind.{e.kind}" in CATALOG else e.kind),
                html.Td(format_number(e.value, 2, lang)), html.Td(format_number(e.threshold, 2, lang)),
            ]) for e in data.recent]),
        ]))
    return out



def actions(app: dash.Dash, read: Reader, default_site: str) -> None:
    """An engineer acknowledges a firing alert, which stops its re-notification."""

    @app.callback(Output("alerts-notice", "children"),
                  Input({"type": "alert-ack", "rule": ALL, "subject": ALL}, "n_clicks"),
                  State("lang", "data"), prevent_initial_call=True)
    def _ack(clicks: list[int], lang_value: str | None) -> str:
        lang = pick(lang_value) or DEFAULT
        target = ctx.triggered_id
        if not isinstance(target, dict) or not any(clicks):
            return no_update
        if not access.has_role("engineer"):
            return t("edit.refused", lang)
        from lingtan.core.alerts.store import ack

        by = access.current_username() or "dashboard"

        def work(conn: sa.Connection) -> None:
            ack(conn, int(target["rule"]), str(target["subject"]), by, clock.now())
            conn.commit()

        read(work)
        log.info("dashboard: alert acknowledged", extra={"rule": target["rule"], "subject": target["subject"],
                                                         "user": by})
        return t("alerts.acked_now", lang, rule=target["rule"], subject=target["subject"])
