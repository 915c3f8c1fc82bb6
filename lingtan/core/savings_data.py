"""The points a baseline is fitted on: the boundary's energy and each variable per day, summed to
weeks or months (docs/domain.md, "Baselines and savings").

Energy comes from the same series the dashboard draws (the site's KPI series, a structure node's
series, or the meters' counter rollups), per site-local day. A point whose energy covers less
than 90 % of its time, or that lacks a variable, is left out of the fit and the answer says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

from lingtan.core import counters, series
from lingtan.core.degree_days import daily_degree_days
from lingtan.core.savings_schema import Boundary, Resolution, Variable, Window
from lingtan.core.structure_schema import QUANTITY
from lingtan.core.structure_series import node_series

MIN_COVERAGE = 0.9  # as for a year's figures (docs/domain.md): a point stands only with 90 % of its data
DAY_S = 86400.0


@dataclass
class Points:
    """Energy and variables per point (a day, week or month), in time order, complete points only."""

    labels: list[str]
    starts: list[date]
    days: list[int]
    energy: np.ndarray
    variables: dict[str, np.ndarray]
    left_out: list[str] = field(default_factory=list)


def _midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def days_of(w: Window, tz: str, now: datetime) -> tuple[date, date]:
    """[first day, day after the last) of a window, an open end running to the last whole day."""
    today = now.astimezone(ZoneInfo(tz)).date()
    last = w.end if w.end is not None else today - timedelta(days=1)
    return w.start, min(last, today - timedelta(days=1)) + timedelta(days=1)


def daily_energy(conn: sa.Connection, site_id: str, b: Boundary, first: date, end: date, tz: str,
                 now: datetime) -> dict[date, tuple[float, float]]:
    """(energy, coverage) per site-local day with data, in the carrier's unit."""
    zone = ZoneInfo(tz)
    a, z = _midnight(first, zone), _midnight(end, zone)
    out: dict[date, tuple[float, float]] = {}
    if b.site:
        for p in series.kpi_series(conn, site_id, a, z, "1d", now).points:
            v = p.consumption_kwh if b.carrier == "electricity" else p.gas_m3
            if v is not None:
                out[p.time.astimezone(zone).date()] = (v, p.coverage)
    elif b.node is not None:
        for q in node_series(conn, site_id, b.node, a, z, "1d", now).points:
            v = q.energy.get(b.carrier)
            if v is not None:
                out[q.time.astimezone(zone).date()] = (v, q.coverage)
    else:
        meters = b.meters or []
        for t, delta, covered, _gap in counters.counter_series(conn, meters, QUANTITY[b.carrier], a, z, "1d"):
            out[t.astimezone(zone).date()] = (delta, min(covered / (DAY_S * len(meters)), 1.0))
    return out


def _daily_temperature(conn: sa.Connection, meter: str, a: datetime, z: datetime, zone: ZoneInfo
                       ) -> dict[date, float]:
    rows = conn.execute(sa.text(
        "SELECT bucket, avg FROM readings_1d WHERE meter_id = :m AND quantity = 'temperature'"
        " AND bucket >= :a AND bucket < :z ORDER BY bucket"), {"m": meter, "a": a, "z": z}).all()
    return {r.bucket.astimezone(zone).date(): float(r.avg) for r in rows}


def daily_variables(conn: sa.Connection, site_id: str, variables: list[Variable], first: date, end: date,
                    tz: str, now: datetime) -> dict[str, dict[date, float]]:
    zone = ZoneInfo(tz)
    a, z = _midnight(first, zone), _midnight(end, zone)
    out: dict[str, dict[date, float]] = {}
    production: dict[date, float] | None = None
    for v in variables:
        if v.source == "production":
            if production is None:
                production = {p.time.astimezone(zone).date(): p.production
                              for p in series.kpi_series(conn, site_id, a, z, "1d", now).points
                              if p.production is not None}
            out[v.name] = production
        elif v.source in ("hdd", "cdd"):
            means = _daily_temperature(conn, v.meter, a, z, zone) if v.meter else \
                {d.date: d.value for d in v.daily_means_c if first <= d.date < end}
            kind = "heating" if v.source == "hdd" else "cooling"
            days = sorted(means)
            dd = daily_degree_days([means[d] for d in days], v.base_c, kind) if days else []
            out[v.name] = {d: float(x) for d, x in zip(days, dd, strict=True)}
        else:
            out[v.name] = {d.date: d.value for d in v.values if first <= d.date < end}
    return out


def _bucket_start(d: date, resolution: Resolution, first: date) -> date:
    if resolution == "day":
        return d
    if resolution == "week":
        return first + timedelta(days=(d - first).days // 7 * 7)
    return d.replace(day=1)


def points(conn: sa.Connection, site_id: str, b: Boundary, variables: list[Variable], w: Window,
           resolution: Resolution, tz: str, now: datetime) -> Points:
    """The complete points of window ``w``: a day counts with 90 % coverage and every variable; a
    week or month only when every one of its days in the window does."""
    first, end = days_of(w, tz, now)
    energy = daily_energy(conn, site_id, b, first, end, tz, now)
    values = daily_variables(conn, site_id, variables, first, end, tz, now)
    groups: dict[date, list[date]] = {}
    d = first
    while d < end:
        groups.setdefault(_bucket_start(d, resolution, first), []).append(d)
        d += timedelta(days=1)
    labels, starts, days, ys = [], [], [], []
    xs: dict[str, list[float]] = {v.name: [] for v in variables}
    left_out: list[str] = []
    for start, members in groups.items():
        label = start.isoformat() if resolution != "month" else start.strftime("%Y-%m")
        missing = [m for m in members if m not in energy or energy[m][1] < MIN_COVERAGE]
        lacking = [v.name for v in variables if any(m not in values[v.name] for m in members)]
        if missing or lacking:
            why = f"energy covers less than {MIN_COVERAGE:.0%} on {len(missing)} day(s)" if missing else \
                f"no {', '.join(lacking)}"
            left_out.append(f"{label}: {why}")
            continue
        labels.append(label)
        starts.append(start)
        days.append(len(members))
        ys.append(sum(energy[m][0] for m in members))
        for v in variables:
            xs[v.name].append(sum(values[v.name][m] for m in members))
    return Points(labels, starts, days, np.asarray(ys, dtype=float),
                  {k: np.asarray(x, dtype=float) for k, x in xs.items()}, left_out)
