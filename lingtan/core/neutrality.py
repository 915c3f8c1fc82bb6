"""The net balance of a period: gross Scope 1 + 2, green instruments, retired offsets, net, and
whether the period is carbon-neutral under the rule the site chose (docs/domain.md,
"Offsets and the net balance").

Green certificates and green-power trades are Scope 2 instruments: they lower market-based Scope 2
and are never offsets. Offsets (credits and removals) are claimed for one calendar year each; the
register's checks (``programme_schema.check_offsets``) keep a credit from being claimed twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import programme_figures as pf
from lingtan.core.programme_schema import NEUTRALITY_RULES, ZeroCarbonProgramme
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.kernel import clock


@dataclass
class Instrument:
    kind: Annotated[Literal["gec", "trade"], Field(description="green certificates or a green-power trade")]
    kwh: float
    tco2e: Annotated[float, Field(description="what it took off market-based Scope 2")]


@dataclass
class OffsetLine:
    id: str
    type: str
    project: str
    vintage: int
    quantity_t: float
    serials: str
    retired_on: date
    reference: str


@dataclass
class NetBalance:
    site_id: str
    period: Literal["year"]
    label: str
    start: datetime
    end: datetime
    source: Annotated[str, Field(description="entered, closed, provisional or running")]
    coverage: float
    rule: str
    rule_text: str
    before_instruments_t: Annotated[float | None, Field(description=(
        "Scope 1 + 2 market-based with no green instruments deducted (electricity at the residual mix)"))]
    instruments: list[Instrument]
    instruments_t: float
    gross_t: Annotated[float | None, Field(description=(
        "Scope 1 + 2 on the rule's basis: market-based after instruments, or location-based"))]
    offsets: list[OffsetLine]
    offsets_t: float
    offsets_by_type: dict[str, float]
    net_t: float | None
    neutral: bool | None
    reason: str


def _residual_t_per_kwh(f: pf.WindowFigures) -> float:
    r = next((x for x in f.kpis.factors if x.kind == "grid_residual"), None)
    return r.value / 1000.0 if r is not None else 0.0  # kgCO2/kWh → t/kWh


def net_balance(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, year: int,
                now: datetime | None = None, model: SiteEnergyModel | None = None,
                f: pf.WindowFigures | None = None) -> NetBalance:
    """The net balance of calendar ``year`` (site-local), entered or metered; ``f``: the year's
    figures when the caller has them."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    f = f or pf.year_figures(conn, site_id, z, year, now, model)
    e, c = f.kpis.electricity, f.kpis.carbon
    rule = z.programme.neutrality_rule
    rate = _residual_t_per_kwh(f)
    imp = e.grid_import_kwh.value or 0.0
    trade, gec = e.green_trade_kwh.value or 0.0, e.green_certificate_kwh.value or 0.0
    # Market-based Scope 2 deducts instruments from grid import, not below 0 (docs/domain.md):
    # what they took off is the residual mix on the kWh they actually covered.
    covered_trade = min(trade, imp)
    covered_gec = min(gec, max(imp - covered_trade, 0.0))
    instruments = [Instrument("trade", trade, covered_trade * rate),
                   Instrument("gec", gec, covered_gec * rate)]
    instruments = [i for i in instruments if i.kwh > 0]
    market = c.scope12_market_t.value
    inst_t = sum(i.tco2e for i in instruments)
    if rule == "iso14068_market":
        gross, deducted = market, inst_t
    else:
        gross, deducted = c.scope12_location_t.value, 0.0
    claimed = [o for o in z.offsets if o.period == year]
    lines = [OffsetLine(o.id, o.type, o.project, o.vintage, o.quantity_t,
                        o.serial_from + (f"–{o.serial_to}" if o.serial_to else ""), o.retired_on, o.reference)
             for o in claimed]
    by_type: dict[str, float] = {}
    for o in claimed:
        by_type[o.type] = by_type.get(o.type, 0.0) + o.quantity_t
    off = sum(by_type.values())
    net = gross - off if gross is not None else None
    neutral = None if net is None else net <= 1e-9
    cov = 1.0 if f.source == "entered" else c.scope12_market_t.coverage
    if net is None:
        reason = "no Scope 1 + 2 figure for the period"
    elif neutral:
        reason = f"offsets {off:,.3f} t cover the residual {gross:,.3f} t"
    else:
        reason = f"offsets {off:,.3f} t leave {net:,.3f} t of the residual {gross:,.3f} t uncovered"
    if f.source == "running":
        reason += "; the year is still running"
    return NetBalance(
        site_id=site_id, period="year", label=str(year), start=f.start, end=f.end, source=f.source,
        coverage=cov, rule=rule, rule_text=NEUTRALITY_RULES[rule],
        before_instruments_t=(market + inst_t) if market is not None else None,
        instruments=instruments, instruments_t=deducted, gross_t=gross, offsets=lines, offsets_t=off,
        offsets_by_type=by_type, net_t=net, neutral=neutral, reason=reason)
