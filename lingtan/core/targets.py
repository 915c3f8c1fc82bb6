"""Targets of the zero-carbon programme: where each stands against its straight line, and whether
it is on track (docs/domain.md, "Zero-carbon programme", targets).

- Trajectory: the straight line from the base year's value to the target value in the target year.
- Current value: the last 12 whole months (site-local), placed at their midpoint in time.
- Projection: the line from the base year through the current value, carried to the target year
  ("at the rate of progress so far"). A calendar year's value sits at the middle of its year.
- Status: on track when the projection reaches the target; at risk when it falls short by at most
  ``at_risk_margin`` of the change the target asks for; off track beyond that. Once the target year
  is over, its own value decides: on track if it met the target, off track if not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import programme_figures as pf
from lingtan.core.programme_schema import Target, ZeroCarbonProgramme
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.kernel import clock

Status = Literal["on_track", "at_risk", "off_track", "unknown"]


@dataclass
class TargetValue:
    label: Annotated[str, Field(description="the year, or the window (e.g. 2025-12..2026-11)")]
    start: datetime
    end: datetime
    value: float | None
    source: Annotated[str, Field(description="entered, closed, provisional or running")]
    coverage: Annotated[float, Field(description="share of the window with data behind the value")]


@dataclass
class TrajectoryPoint:
    year: int
    value: float


@dataclass
class Projection:
    year: int
    value: float
    from_position: Annotated[float, Field(description="the current value's position in fractional years")]


@dataclass
class TargetStatus:
    id: str
    name: str
    kind: str
    basis: str | None
    per: str | None
    unit: str
    lower_is_better: bool
    base_year: int
    base: TargetValue | None
    target_year: int
    target_value: float | None
    latest_year: Annotated[TargetValue | None, Field(description=(
        "the latest complete year: closed if one is, else entered or provisional (its source says)"))]
    year_to_date: TargetValue | None
    last_12_months: TargetValue | None
    trajectory: list[TrajectoryPoint]
    trajectory_now: Annotated[float | None, Field(description=(
        "the straight line at the last 12 months' midpoint"))]
    projection: Projection | None
    status: Status
    reason: str
    years: Annotated[list[TargetValue], Field(description="every year from the base year with data")] = field(
        default_factory=list)


@dataclass
class ProgrammeFigures:
    """The windows every target is read from, computed once for all targets."""

    now: datetime
    timezone: str
    production_unit: str
    years: dict[int, pf.WindowFigures]
    last_12: pf.WindowFigures | None
    ytd: pf.WindowFigures | None
    last_12_label: str = "last 12 months"


def _has_data(f: pf.WindowFigures) -> bool:
    return f.source == "entered" or f.kpis.electricity.consumption_kwh.coverage > 0


def programme_figures(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme,
                      now: datetime | None = None, model: SiteEnergyModel | None = None) -> ProgrammeFigures:
    """Every year from the earliest base or entered year to now that has data, the last 12
    months, and the year to date: read once for all targets."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    tz = model.site.timezone
    this_year = now.astimezone(ZoneInfo(tz)).year
    bases = [t.base_year or z.programme.base_year for t in z.targets]
    starts = [y for y in [z.programme.base_year, *bases, *(h.year for h in z.programme.history)]
              if y is not None]
    first = min(starts) if starts else this_year
    years: dict[int, pf.WindowFigures] = {}
    for y in range(first, this_year + 1):
        a, _ = pf.year_window(y, tz)
        if a >= now:
            break
        f = pf.year_figures(conn, site_id, z, y, now, model)
        if _has_data(f):
            years[y] = f
    a, b = pf.last_12_months(now, tz)
    last_12: pf.WindowFigures | None = pf.window_figures(conn, site_id, z, a, b, now, model)
    label = "last 12 months"
    if last_12 is not None and not pf.complete(last_12):
        # A partly metered year is not a year's value (a month of data would "cut" annual
        # emissions by 90 %): the newest complete year known, entered or metered, stands for the
        # last 12 months, and its label says which year it is and why.
        cover = last_12.kpis.electricity.consumption_kwh.coverage
        ended = [y for y, f in years.items() if f.end <= now and pf.complete(f)]
        why = f"the last 12 months have data for {cover:.1%} of their time" if cover > 0 else \
            "the last 12 months have no metered data"
        last_12 = years[max(ended)] if ended else None
        label = f"{max(ended)} (latest complete year; {why})" if ended else label
    ytd = years.get(this_year)
    return ProgrammeFigures(now, tz, model.params.production_unit, years, last_12,
                            ytd if ytd and ytd.source == "running" else None, label)


def indicator_of(t: Target) -> str:
    if t.kind == "intensity":
        return f"intensity_{t.per}"
    return t.kind


def _value(t: Target, f: pf.WindowFigures | None, label: str) -> TargetValue | None:
    if f is None:
        return None
    v = pf.indicator(indicator_of(t), f, t.basis)
    cov = f.kpis.electricity.consumption_kwh.coverage if f.source != "entered" else 1.0
    return TargetValue(label, f.start, f.end, v, f.source, cov)


def _better(a: float, b: float, lower: bool) -> bool:
    """a is at least as good as b."""
    return a <= b + 1e-12 if lower else a >= b - 1e-12


def _fmt(v: float, unit: str) -> str:
    return f"{v:.1%}" if unit == "ratio" else f"{v:,.4g} {unit}"


def evaluate(t: Target, z: ZeroCarbonProgramme, figs: ProgrammeFigures) -> TargetStatus:
    base_year = t.base_year or z.programme.base_year
    assert base_year is not None  # check_programme insists
    unit = pf.unit_of(indicator_of(t), figs.production_unit)
    lower = t.lower_is_better
    years = {y: _value(t, f, str(y)) for y, f in sorted(figs.years.items())}
    base = years.get(base_year)
    closed = [v for y, v in years.items() if v is not None and v.source in ("closed", "entered")
              and figs.years[y].end <= figs.now]
    ended = [v for y, v in years.items() if v is not None and figs.years[y].end <= figs.now
             and pf.complete(figs.years[y])]
    latest = next((v for v in reversed(closed) if v.source == "closed"), None) or \
        (closed[-1] if closed else (ended[-1] if ended else None))
    last_12 = _value(t, figs.last_12, figs.last_12_label) if figs.last_12 else None
    ytd = _value(t, figs.ytd, f"{figs.ytd.start.astimezone(ZoneInfo(figs.timezone)).year} to date") \
        if figs.ytd else None
    bv = base.value if base is not None else None
    target = None
    if t.value is not None:
        target = t.value
    elif bv is not None and t.reduction is not None:
        target = bv * (1 - t.reduction)
    trajectory: list[TrajectoryPoint] = []
    traj_now = projection = None
    status: Status = "unknown"
    reason = ""
    span = t.target_year - base_year
    if bv is None or target is None:
        reason = f"no value for the base year {base_year}" if bv is None else "no target value"
    else:
        trajectory = [TrajectoryPoint(y, bv + (target - bv) * (y - base_year) / span)
                      for y in range(base_year, t.target_year + 1)]
        target_done = years.get(t.target_year)
        if target_done is not None and target_done.value is not None and \
                figs.years[t.target_year].end <= figs.now:
            met = _better(target_done.value, target, lower)
            status = "on_track" if met else "off_track"
            reason = (f"the target year {t.target_year} is over: {_fmt(target_done.value, unit)} against the "
                      f"target {_fmt(target, unit)} ({'met' if met else 'missed'})")
        elif last_12 is None or last_12.value is None:
            reason = "no value for the last 12 months"
        else:
            pos = pf.midpoint(last_12.start, last_12.end, figs.timezone)
            base_pos = base_year + 0.5
            traj_now = bv + (target - bv) * (pos - base_pos) / span
            if pos <= base_pos:
                reason = "the last 12 months do not lie after the base year"
            else:
                p = bv + (last_12.value - bv) * (t.target_year - base_year) / (pos - base_pos)
                p = min(max(p, 0.0), 1.0) if not lower else max(p, 0.0)
                projection = Projection(t.target_year, p, pos)
                needed = abs(target - bv)
                short = 0.0 if _better(p, target, lower) else abs(p - target)
                gap = short / needed if needed > 0 else (0.0 if short == 0 else float("inf"))
                line = (f"{last_12.label} {_fmt(last_12.value, unit)} against {_fmt(traj_now, unit)} on the "
                        f"straight line; at this rate {t.target_year} reaches {_fmt(p, unit)}, target "
                        f"{_fmt(target, unit)}")
                if short == 0:
                    status, reason = "on_track", line
                elif gap <= t.at_risk_margin:
                    status, reason = "at_risk", f"{line}: short by {gap:.0%} of the change asked for " \
                                                f"(at risk up to {t.at_risk_margin:.0%})"
                else:
                    status, reason = "off_track", f"{line}: short by {gap:.0%} of the change asked for"
    return TargetStatus(
        id=t.id, name=t.name or t.id, kind=t.kind,
        basis=t.basis if t.kind in ("emissions", "intensity") else None, per=t.per, unit=unit,
        lower_is_better=lower, base_year=base_year, base=base, target_year=t.target_year,
        target_value=target, latest_year=latest, year_to_date=ytd, last_12_months=last_12,
        trajectory=trajectory, trajectory_now=traj_now, projection=projection, status=status, reason=reason,
        years=[v for v in years.values() if v is not None],
    )


def target_statuses(conn: sa.Connection, site_id: str, z: ZeroCarbonProgramme, now: datetime | None = None,
                    figs: ProgrammeFigures | None = None) -> list[TargetStatus]:
    figs = figs or programme_figures(conn, site_id, z, now)
    return [evaluate(t, z, figs) for t in z.targets]
