"""The department report: the structure's departments ranked by energy, carbon and cost for a month
or year, against the same period last year and each department's own target (docs/domain.md,
"Metering structure"). Every figure is a node figure of ``structure_kpis.structure_kpis``; its
savings section is each project's answer of ``savings_service.project_savings`` for the period.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import savings_service
from lingtan.core.factors import Factor
from lingtan.core.reports import Period, ReportPeriod, ReportSite
from lingtan.core.savings_schema import SavingsError
from lingtan.core.savings_service import ProjectSavings
from lingtan.core.site_model import load_site_model
from lingtan.core.structure import load_structure
from lingtan.core.structure_kpis import NodeKpis, structure_kpis
from lingtan.core.structure_schema import NodeTarget
from lingtan.kernel import clock, periods

RANKED = ("tce", "tco2e_market", "carbon_cost_cny", "cost_cny")


@dataclass
class Target:
    energy_tce: float | None
    carbon_tco2e: float | None
    electricity_kwh: float | None
    basis: Annotated[str, Field(description="the month's own target, or the year's spread over its days")]


@dataclass
class DepartmentRow:
    id: str
    name: str
    electricity_kwh: float | None
    tce: float | None
    tco2e_location: float | None
    tco2e_market: float | None
    carbon_cost_cny: float | None
    cost_cny: float | None
    kwh_by_band: dict[str, float | None]
    cost_by_band: dict[str, float | None]
    tce_per_unit_kg: float | None
    tco2e_per_unit_kg: float | None
    kwh_per_m2: float | None
    kwh_per_person: float | None
    coverage: Annotated[float, Field(description="the lowest coverage behind the row's figures, 0..1")]
    last_year_tce: Annotated[float | None, Field(description="the same period a year earlier")]
    last_year_tco2e_market: float | None
    change_tce: Annotated[float | None, Field(description="(this − last year) ÷ last year")]
    target: Target | None
    vs_target_tce: Annotated[float | None, Field(description="actual ÷ target; above 1 is over target")]
    vs_target_tco2e: float | None
    ranks: Annotated[dict[str, int], Field(description=f"1 = largest, for {', '.join(RANKED)}")] = field(
        default_factory=dict)


@dataclass
class DepartmentReport:
    site: ReportSite
    period: ReportPeriod
    carbon_price_cny_per_tco2e: float | None
    departments: Annotated[list[DepartmentRow], Field(description="ranked by tce, largest first")]
    bands: Annotated[list[str], Field(description="the time-of-use bands in the rows, in order")]
    factors: list[Factor]
    notes: list[str]
    savings: Annotated[list[ProjectSavings], Field(description=(
        "each retrofit project's measured savings in the period's part of its reporting period"))] = field(
        default_factory=list)


def department_report(conn: sa.Connection, site_id: str, period: str = "month", day: date | None = None,
                      now: datetime | None = None) -> DepartmentReport:
    if period not in ("month", "year"):
        raise periods.PeriodError("period", f"unknown period {period!r} (known: month, year)")
    now = now or clock.now()
    model = load_site_model(conn, site_id)
    tz = model.site.timezone
    day = day or now.astimezone(ZoneInfo(tz)).date()
    start, end = periods.calendar(period, day, tz)
    before = _year_earlier(day)
    last_start, last_end = periods.calendar(period, before, tz)
    this = structure_kpis(conn, site_id, start, end, now, model=model)
    last = {n.id: n for n in structure_kpis(conn, site_id, last_start, last_end, now, model=model).nodes}
    targets = {n.id: n.targets for n in load_structure(conn, site_id).nodes}
    rows = [_row(n, last.get(n.id), _target(targets.get(n.id, []), period, day)) for n in this.nodes
            if n.department]
    for key in RANKED:
        order = sorted((r for r in rows if getattr(r, key) is not None), key=lambda r: -getattr(r, key))
        for i, r in enumerate(order, 1):
            r.ranks[key] = i
    rows.sort(key=lambda r: (r.tce is None, -(r.tce or 0.0), r.id))
    bands = list(dict.fromkeys(b for r in rows for b in r.kwh_by_band))
    label = f"{day.year}-{day.month:02d}" if period == "month" else str(day.year)
    local = ZoneInfo(tz)
    kind: Period = "month" if period == "month" else "year"
    notes = list(this.notes)
    if not rows:
        notes.append("no node of the structure is marked department: true")
    return DepartmentReport(
        site=ReportSite(model.site.id, model.site.name, tz, model.site.grid_region, model.factor_set),
        period=ReportPeriod(kind, label, start.astimezone(local), end.astimezone(local)),
        carbon_price_cny_per_tco2e=this.carbon_price_cny_per_tco2e, departments=rows, bands=bands,
        factors=this.factors, notes=notes, savings=_savings(conn, site_id, period, day, now))


def _savings(conn: sa.Connection, site_id: str, period: str, day: date, now: datetime
             ) -> list[ProjectSavings]:
    """Each project's savings in the period, as ``GET …/projects/{id}/savings`` answers them; a project
    whose reporting period does not reach into the period is left out."""
    out = []
    for p in savings_service.projects(conn, site_id):
        try:
            out.append(savings_service.project_savings(conn, site_id, p.id, now,
                                                       "month" if period == "month" else "year", day))
        except SavingsError:
            continue
    return out


def _year_earlier(day: date) -> date:
    return day.replace(year=day.year - 1, day=min(day.day, calendar.monthrange(day.year - 1, day.month)[1]))


def _target(targets: list[NodeTarget], period: str, day: date) -> Target | None:
    """The period's target: a month's own, else the year's spread over the month by its days."""
    if period == "month":
        own = next((t for t in targets if t.year == day.year and t.month == day.month), None)
        if own is not None:
            return Target(own.energy_tce, own.carbon_tco2e, own.electricity_kwh, "the month's own target")
    year = next((t for t in targets if t.year == day.year and t.month is None), None)
    if year is None:
        months = [t for t in targets if t.year == day.year and t.month is not None]
        if period == "year" and len(months) == 12:
            add = lambda xs: None if any(x is None for x in xs) else sum(xs)  # noqa: E731
            return Target(add([t.energy_tce for t in months]), add([t.carbon_tco2e for t in months]),
                          add([t.electricity_kwh for t in months]), "the sum of the twelve monthly targets")
        return None
    if period == "year":
        return Target(year.energy_tce, year.carbon_tco2e, year.electricity_kwh, "the year's target")
    k = calendar.monthrange(day.year, day.month)[1] / (366 if calendar.isleap(day.year) else 365)
    scale = lambda x: None if x is None else x * k  # noqa: E731
    return Target(scale(year.energy_tce), scale(year.carbon_tco2e), scale(year.electricity_kwh),
                  f"the year's target × {calendar.monthrange(day.year, day.month)[1]} days of the year's "
                  f"{366 if calendar.isleap(day.year) else 365}")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _by_band(n: NodeKpis, attr: str) -> dict[str, float | None]:
    """One value per band name (a band priced differently on two dated tariffs has two lines)."""
    out: dict[str, float | None] = {}
    for b in n.cost_by_band:
        v, old = getattr(b, attr), out.get(b.band, 0.0)
        out[b.band] = None if v is None or old is None else old + v
    return out


def _row(n: NodeKpis, last: NodeKpis | None, target: Target | None) -> DepartmentRow:
    elec = n.energy.get("electricity")
    figs = [f for f in (n.tce, n.tco2e_market, elec) if f is not None]
    last_tce = last.tce.value if last is not None else None
    return DepartmentRow(
        id=n.id, name=n.name, electricity_kwh=elec.value if elec else None, tce=n.tce.value,
        tco2e_location=n.tco2e_location.value, tco2e_market=n.tco2e_market.value,
        carbon_cost_cny=n.carbon_cost_cny.value, cost_cny=n.cost_cny.value,
        kwh_by_band=_by_band(n, "kwh"), cost_by_band=_by_band(n, "cost_cny"),
        tce_per_unit_kg=n.tce_per_unit_kg.value if n.tce_per_unit_kg else None,
        tco2e_per_unit_kg=n.tco2e_per_unit_kg.value if n.tco2e_per_unit_kg else None,
        kwh_per_m2=n.per_m2["kwh"].value if "kwh" in n.per_m2 else None,
        kwh_per_person=n.per_person["kwh"].value if "kwh" in n.per_person else None,
        coverage=min([f.coverage for f in figs] or [1.0]),
        last_year_tce=last_tce, last_year_tco2e_market=last.tco2e_market.value if last is not None else None,
        change_tce=_ratio(None if n.tce.value is None or last_tce is None else n.tce.value - last_tce,
                          last_tce),
        target=target,
        vs_target_tce=_ratio(n.tce.value, target.energy_tce if target else None),
        vs_target_tco2e=_ratio(n.tco2e_market.value, target.carbon_tco2e if target else None),
    )
