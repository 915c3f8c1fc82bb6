"""Boilers and heat: boiler efficiency (direct method) with its GB 24500 grade, steam and gas,
and the share of heat that came from recovery rather than the boiler."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from dash import html

from dashboard.data import Reader, Status, status
from dashboard.figures import figure_tile
from dashboard.formatting import date_time
from dashboard.i18n import Lang, t
from dashboard.page import LayoutContext, PageQuery
from lingtan.core.figures import Boiler, WasteHeat
from lingtan.core.gas import gas_basis
from lingtan.core.kpi import window_kpis
from lingtan.core.queries import list_meters
from lingtan.core.site_model import load_site_model

PREFIX = "heat"


@dataclass
class HeatData:
    status: Status
    start: datetime
    end: datetime
    names: dict[str, str]
    boilers: list[Boiler]
    waste_heat: WasteHeat
    recovered_share: float | None


def recovered_share(recovered_gj: float | None, boilers: list[Boiler], ncv_gj_per_m3: float,
                    default_efficiency: float) -> float | None:
    """Recovered ÷ (recovered + boiler heat output); the boiler's output is its gas × NCV × its
    measured efficiency (the site's configured one where no steam meter measures it)."""
    if recovered_gj is None:
        return None
    boiler_gj = sum((b.fuel_m3.value or 0.0) * ncv_gj_per_m3 * (b.efficiency or default_efficiency)
                    for b in boilers)
    total = recovered_gj + boiler_gj
    return recovered_gj / total if total > 0 else None


def layout(ctx: LayoutContext) -> list[Any]:
    return []  # everything on the page comes with its data


def load(read: Reader, q: PageQuery) -> HeatData:
    return read(lambda conn: _read(conn, q))


def _read(conn: sa.Connection, q: PageQuery) -> HeatData:
    site_id, now = q.site_id, q.now
    st = status(conn, site_id, now)
    start, end = q.window(st.timezone)
    kpis = window_kpis(conn, site_id, start, end, now)
    params = load_site_model(conn, site_id).params
    names = {m.id: m.name for m in list_meters(conn, site_id)}
    share = recovered_share(kpis.waste_heat.recovered_gj.value, kpis.boilers,
                            gas_basis(params).gj_per_metered_m3, params.boiler_efficiency)
    return HeatData(st, start, end, names, kpis.boilers, kpis.waste_heat, share)


def render(data: HeatData, lang: Lang) -> list[Any]:
    tz = data.status.timezone
    out: list[Any] = [html.P(f"{date_time(data.start, tz, lang, seconds=False)} – "
                             f"{date_time(data.end, tz, lang, seconds=False)}",
                             className="window-caption")]
    if not data.boilers:
        out.append(html.P(t("heat.none", lang), className="empty"))
    for b in data.boilers:
        eff = b.efficiency * 100 if b.efficiency is not None else None
        grade = t("air.grade.value", lang, grade=b.gb24500_grade) if b.gb24500_grade else ""
        out.append(html.Div(className="card", id=f"heat-card-{b.meter_id}", children=[
            html.H3(data.names.get(b.meter_id, b.meter_id), className="card-title"),
            html.Div(className="tiles", children=[
                figure_tile(f"heat-eff-{b.meter_id}", t("heat.efficiency", lang), eff, "%", 1, lang, grade),
                figure_tile(f"heat-steam-{b.meter_id}", t("heat.steam", lang),
                            b.steam_t.value if b.steam_t else None, "t", 2, lang,
                            coverage=b.steam_t.coverage if b.steam_t else None),
                figure_tile(f"heat-gas-{b.meter_id}", t("heat.gas", lang), b.fuel_m3.value, "m³", 0, lang,
                            coverage=b.fuel_m3.coverage),
            ]),
        ]))
    wh = data.waste_heat
    share = data.recovered_share * 100 if data.recovered_share is not None else None
    out.append(html.Div(className="card", children=[
        html.H3([t("heat.recovered", lang), " · ",
                 html.Span(t(f"basis.{wh.basis}", lang), className=f"label label-{wh.basis}",
                           id="heat-basis")], className="card-title"),
        html.Div(className="tiles", children=[
            figure_tile("heat-recovered-gj", t("heat.recovered", lang), wh.recovered_gj.value, "GJ", 2, lang,
                        coverage=wh.recovered_gj.coverage),
            figure_tile("heat-share", t("heat.share", lang), share, "%", 1, lang, t("heat.share.note", lang)),
        ]),
    ]))
    return out
