"""One structure node's energy bucket by bucket (docs/domain.md, "Metering structure").

Buckets and their sources follow ``series.kpi_series`` (15 minutes, hours, local days, local
months; local days from the day rollups only where the zone's days are the rollups' days), so a
node's series lines up with the site's. Electricity carries the site's location-based carbon per
kWh of the same bucket, as ``structure_kpis`` gives a node the window's.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import queries, series
from lingtan.core.counters import counter_series_many
from lingtan.core.structure import load_structure, resolve
from lingtan.core.structure_schema import CARRIERS, UNIT
from lingtan.kernel import clock


@dataclass(slots=True)
class NodePoint:
    time: datetime
    energy: Annotated[dict[str, float | None], Field(description=(
        "per carrier, in its unit (electricity kWh, gas m³, steam t, heat GJ, water m³); null: no data"))]
    tco2e_location: Annotated[float | None, Field(description=(
        "electricity × the site's location-based carbon per kWh in the bucket"))]
    coverage: Annotated[float, Field(description=(
        "the share of the bucket's meter-time with data, of the carrier that has the least"))]
    unplaced: Annotated[dict[str, float], Field(description=(
        "per carrier: energy counted across a gap that ended in this bucket, not placed in time"))] = \
        field(default_factory=dict)


@dataclass
class NodeSeries:
    site_id: str
    node_id: str
    resolution: str
    timezone: str
    units: dict[str, str]
    points: list[NodePoint]


def node_series(conn: sa.Connection, site_id: str, node_id: str, start: datetime, end: datetime,
                resolution: series.Resolution = "1d", now: datetime | None = None) -> NodeSeries:
    """Raises ``queries.NotFound`` for an unknown site or node."""
    now = now or clock.now()
    site = series.kpi_series(conn, site_id, start, end, resolution, now)
    r = resolve(load_structure(conn, site_id))
    if node_id not in r.nodes:
        raise queries.NotFound(f"node {node_id!r} is not in the structure of site {site_id!r}")
    tz = ZoneInfo(site.timezone)
    buckets = [p.time for p in site.points]
    forms = {c: f[node_id] for c in CARRIERS if node_id in (f := r.forms(c))}
    # one spec per (carrier, quantity, coefficient): the rollups sum meters, the coefficients apply after
    groups: dict[tuple[str, str, float], list[str]] = {}
    for carrier, form in forms.items():
        for (meter, quantity), coef in form.items():
            groups.setdefault((carrier, quantity, coef), []).append(meter)
    keys = list(groups)
    source = resolution if resolution in ("15m", "1h") else ("1d" if series.rollup_days(tz, start) else "1h")
    rows = counter_series_many(conn, [(groups[k], k[1]) for k in keys], buckets[0] if buckets else start, end,
                               source) if keys and buckets else []
    per: list[dict[str, list[float]]] = [{} for _ in buckets]  # carrier → [placed, unplaced, covered]
    for t, values in rows:
        i = bisect_right(buckets, t) - 1
        if i < 0:
            continue
        for j, (carrier, _, coef) in enumerate(keys):
            delta, covered, gap = values[3 * j:3 * j + 3]
            if delta is None:
                continue
            acc = per[i].setdefault(carrier, [0.0, 0.0, 0.0])
            acc[0] += coef * delta
            acc[1] += coef * (gap or 0.0)
            acc[2] += covered or 0.0
    meters = {c: sum(len(groups[k]) for k in keys if k[0] == c) for c in forms}
    points = []
    for i, p in enumerate(site.points):
        b_end = buckets[i + 1] if i + 1 < len(buckets) else series.bucket_end(p.time, resolution, tz)
        seconds = (min(b_end, end) - max(p.time, start)).total_seconds()
        energy = {c: (per[i][c][0] if c in per[i] else None) for c in forms}
        cov = [min(per[i][c][2] / (meters[c] * seconds), 1.0) if c in per[i] and seconds > 0 else 0.0
               for c in forms]
        elec = energy.get("electricity")
        intensity = p.intensity_location_kg_per_kwh
        points.append(NodePoint(
            p.time, energy, elec * intensity / 1000.0 if elec is not None and intensity is not None else None,
            min(cov) if cov else 1.0, {c: per[i][c][1] for c in forms if c in per[i] and per[i][c][1]}))
    return NodeSeries(site_id, node_id, resolution, site.timezone, {c: UNIT[c] for c in forms}, points)
