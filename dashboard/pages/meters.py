"""Meters and gateways: every meter with its newest reading, when it was seen and its quality,
stale or offline in red; gateway health from heartbeats; the dead-letter count and what the
gateways' MQTT brokers dropped. Engineers can correct a meter's role here; viewers see the same
table without the control."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import sqlalchemy as sa
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from dashboard import access
from dashboard.data import Reader, Status, status
from dashboard.formatting import date_time, format_number
from dashboard.i18n import DEFAULT, Lang, pick, t
from dashboard.page import LayoutContext, PageQuery
from lingtan.core.gateways import Gateway, list_gateways
from lingtan.core.kpi import FRESH
from lingtan.core.queries import MeterLatest, get_meter, meters_latest
from lingtan.core.site_file import MeterPatch
from lingtan.core.site_schema import ROLES
from lingtan.kernel.reading import Quality

log = logging.getLogger(__name__)
PREFIX = "meters"
# a meter quiet for longer than FRESH is stale (a poll or two missed); past this it is offline
OFFLINE_AFTER = timedelta(minutes=15)


@dataclass
class MetersData:
    status: Status
    meters: list[MeterLatest]
    gateways: list[Gateway]
    now: datetime
    can_edit: bool = False  # an engineer may correct a meter's role

    @property
    def timezone(self) -> str:
        return self.status.timezone


def layout(ctx: LayoutContext) -> list[Any]:
    return []  # everything on the page comes with its data


def load(read: Reader, q: PageQuery) -> MetersData:
    return read(lambda conn: _read(conn, q))


def _read(conn: sa.Connection, q: PageQuery) -> MetersData:
    st = status(conn, q.site_id, q.now)
    gateways = [g for g in list_gateways(conn) if g.site_id in (None, q.site_id)]
    return MetersData(st, meters_latest(conn, q.site_id), gateways, q.now, q.may("engineer"))


def state_of(m: MeterLatest, now: datetime) -> str:
    if m.time is None or now - m.time > OFFLINE_AFTER:
        return "offline"
    return "stale" if now - m.time > FRESH else "ok"


def quality_text(q: int | None, lang: Lang) -> str:
    if not q:
        return t("quality.good", lang) if q == 0 else "—"
    flags = ", ".join((f.name or "").lower() for f in Quality if f and q & f)
    return t("quality.flagged", lang, flags=flags)


def _role_cell(m: MeterLatest, lang: Lang, can_edit: bool) -> Any:
    if not can_edit:
        return m.role or t("role.none", lang)
    return dcc.Dropdown(id={"type": "meter-role", "meter": m.id}, value=m.role, clearable=False,
                        options=[{"label": r, "value": r} for r in ROLES], className="role-edit",
                        searchable=False)


def meter_table(data: MetersData, lang: Lang, can_edit: bool) -> html.Table:
    head = ["meters.id", "meters.name", "meters.role", "meters.last", "meters.seen", "meters.quality",
            "meters.state"]
    rows = []
    for m in data.meters:
        state = state_of(m, data.now)
        last = "—" if m.value is None else f"{format_number(m.value, 3, lang)} ({m.quantity})"
        seen = t("meters.never", lang) if m.time is None else date_time(m.time, data.timezone, lang)
        rows.append(html.Tr(className=f"row-{state}", id=f"meter-row-{m.id}", children=[
            html.Td(m.id), html.Td(m.name), html.Td(_role_cell(m, lang, can_edit)), html.Td(last),
            html.Td(seen), html.Td(quality_text(m.quality, lang)),
            html.Td(t(f"meters.{state}", lang), className=f"state state-{state}"),
        ]))
    return html.Table(className="table", id="meters-table", children=[
        html.Thead(html.Tr([html.Th(t(k, lang)) for k in head])), html.Tbody(rows)])


def _broker_line(b: dict[str, Any], data: MetersData, lang: Lang) -> html.Div:
    """One broker of a gateway: the messages it dropped since the gateway started (its own counter,
    since the broker started, beside it when larger), or why that cannot be told."""
    role = " + ".join(t(f"gateways.role.{r}", lang) for r in str(b.get("role") or "").split("+") if r)
    since, counter, last = b.get("dropped_since_start"), b.get("broker_dropped"), b.get("last_drop")
    when = (t("meters.never", lang) if last is None
            else date_time(datetime.fromtimestamp(float(last), UTC), data.timezone, lang))
    title = t("gateways.broker.title", lang, broker=b.get("broker", "?"), role=role, last=when)
    if b.get("state") != "published" or since is None:
        state = "unpublished" if b.get("state") == "not published" else "waiting"
        return html.Div(t(f"gateways.broker.{state}", lang), title=title, className="broker-drops")
    text = format_number(since, 0, lang)
    if counter is not None and counter > since:
        text += " " + t("gateways.broker.counter", lang, n=format_number(counter, 0, lang))
    return html.Div(text, title=title, className="broker-drops" + (" alarm" if since else ""))


def gateway_table(data: MetersData, lang: Lang) -> Any:
    if not data.gateways:
        return html.P(t("gateways.none", lang), className="empty")
    head = ["gateways.id", "gateways.heartbeat", "meters.state", "gateways.buffer", "gateways.dead",
            "gateways.broker", "gateways.devices"]
    rows = []
    for g in data.gateways:
        s = g.status
        devices = s.get("devices") or []
        up = sum(1 for d in devices if d.get("up"))
        state = "ok" if g.online else "offline"
        rows.append(html.Tr(className=f"row-{state}", children=[
            html.Td(g.id), html.Td(date_time(g.last_heartbeat, data.timezone, lang)),
            html.Td(t(f"gateways.{'online' if g.online else 'offline'}", lang),
                    className=f"state state-{state}"),
            html.Td(format_number(s.get("buffer_pending"), 0, lang)),
            html.Td(format_number(s.get("dead_letters"), 0, lang)),
            # Modbus into PostgreSQL: no broker, nothing to show
            html.Td([_broker_line(b, data, lang) for b in s.get("brokers") or []] or "—"),
            html.Td(f"{up} / {len(devices)}"),
        ]))
    return html.Table(className="table", id="gateways-table", children=[
        html.Thead(html.Tr([html.Th(t(k, lang)) for k in head])), html.Tbody(rows)])


def dead_letters(data: MetersData) -> int:
    return sum(int(g.status.get("dead_letters") or 0) for g in data.gateways)


def render(data: MetersData, lang: Lang) -> list[Any]:
    return [
        html.H2(t("meters.title", lang), className="section-title"),
        meter_table(data, lang, data.can_edit),
        html.H2(t("gateways.title", lang), className="section-title"),
        html.P(t("dead.total", lang, n=format_number(dead_letters(data), 0, lang)), id="dead-letters",
               className="dead-letters" + (" alarm" if dead_letters(data) else "")),
        gateway_table(data, lang),
    ]


def actions(app: dash.Dash, read: Reader, default_site: str) -> None:
    """An engineer corrects a meter's role from its dropdown; the notice line says what was saved."""

    @app.callback(Output("meters-notice", "children"),
                  Input({"type": "meter-role", "meter": ALL}, "value"), State("lang", "data"),
                  prevent_initial_call=True)
    def _change_role(_values: list[str | None], lang_value: str | None) -> str:
        lang = pick(lang_value) or DEFAULT
        changed = ctx.triggered_id
        if not isinstance(changed, dict) or not ctx.triggered or ctx.triggered[0]["value"] is None:
            return no_update
        # the viewer never sees the control, and the server checks again: a crafted request is refused
        if not access.has_role("engineer"):
            return t("edit.refused", lang)
        from lingtan.core.site_model import update_meter

        meter_id, role = changed["meter"], ctx.triggered[0]["value"]

        def work(conn: sa.Connection) -> bool:
            # The dropdowns fire when the table is (re)drawn, with the role they show: only a
            # different role is a change, so a page refresh never writes.
            if get_meter(conn, meter_id).role == role:
                return False
            update_meter(conn, meter_id, MeterPatch(role=role))
            conn.commit()
            return True

        if not read(work):
            return no_update
        log.info("dashboard: meter role changed", extra={"meter": meter_id, "role": role,
                                                          "user": access.current_username()})
        return t("edit.saved", lang, meter=meter_id, role=role)
