"""Electricity cost by time-of-use band (docs/domain.md "Time-of-use cost").

Bands are in the site's local time. Grid import is read per minute of the local day from the
15-minute rollups (1-minute rollups at the window's ragged edges, or throughout when a band edge
or the zone's offset is not on a quarter hour), each bucket priced by the band its start falls in;
the flat price applies only where no band does. Energy a counter counted across a gap has no
known time of day, so it cannot be given a band: it is priced at the flat price on a line of its
own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from lingtan.core.rollups import MINUTE
from lingtan.core.site_schema import Tariff, TariffBand
from lingtan.kernel.timegrid import ceil_time, floor_time

QUARTER = timedelta(minutes=15)
NO_BAND = "flat (no band)"
UNPLACED = "counted across a gap (time unknown)"


@dataclass
class BandCost:
    band: str
    price_cny_per_kwh: float | None
    kwh: float
    cost_cny: float | None


@dataclass
class DayProfile:
    """Grid import by start minute of the local day, and what was counted across gaps."""

    kwh_by_minute: dict[int, float]
    unplaced_kwh: float


def minute_of_day(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _step(tariff: Tariff, tz: ZoneInfo, a: datetime, b: datetime) -> timedelta:
    edges = [minute_of_day(t) for band in tariff.bands for t in (band.start, band.end)]
    offsets = [t.astimezone(tz).utcoffset() or timedelta() for t in (a, b)]
    aligned = all(m % 15 == 0 for m in edges) and all(o % QUARTER == timedelta() for o in offsets)
    return QUARTER if aligned else MINUTE


def day_profile(conn: sa.Connection, meters: list[str], a: datetime, b: datetime, timezone: str,
                tariff: Tariff) -> DayProfile:
    """Grid import of ``meters`` in [a, b) by local minute of the day (window rounded to whole
    minutes as ``lingtan.core.counters.counter_energy`` rounds it)."""
    return day_profiles(conn, meters, [(a, b)], timezone, tariff)[0]


def day_profiles(conn: sa.Connection, meters: list[str], windows: Sequence[tuple[datetime, datetime]],
                 timezone: str, tariff: Tariff) -> list[DayProfile]:
    """``day_profile`` of each window, in order, in one statement."""
    if not meters:
        return [DayProfile({}, 0.0) for _ in windows]
    tz = ZoneInfo(timezone)
    params: dict[str, object] = {"m": meters, "tz": timezone}
    branches = []
    for k, (a, b) in enumerate(windows):
        a1, b1 = ceil_time(a, MINUTE), ceil_time(b, MINUTE)
        parts: list[tuple[str, datetime, datetime]] = []
        if _step(tariff, tz, a1, b1) == QUARTER and ceil_time(a1, QUARTER) < floor_time(b1, QUARTER):
            q0, q1 = ceil_time(a1, QUARTER), floor_time(b1, QUARTER)
            parts = [("readings_1m", a1, q0), ("readings_15m", q0, q1), ("readings_1m", q1, b1)]
        elif a1 < b1:
            parts = [("readings_1m", a1, b1)]
        for i, (table, lo, hi) in enumerate(parts):
            if lo >= hi:
                continue
            params[f"a{k}_{i}"], params[f"b{k}_{i}"] = lo, hi
            branches.append(f"SELECT {k} AS k, bucket, delta, gap_delta FROM {table} WHERE meter_id = ANY(:m)"
                            f" AND quantity = 'active_energy_import' AND bucket >= :a{k}_{i}"
                            f" AND bucket < :b{k}_{i}")
    out = [DayProfile({}, 0.0) for _ in windows]
    if not branches:
        return out
    rows = conn.execute(sa.text(
        "SELECT k, (extract(hour FROM bucket AT TIME ZONE :tz) * 60"
        " + extract(minute FROM bucket AT TIME ZONE :tz))::int AS minute,"
        " coalesce(sum(delta), 0), coalesce(sum(gap_delta), 0)"
        f" FROM ({' UNION ALL '.join(branches)}) t GROUP BY 1, 2 ORDER BY 1, 2"
    ), params).all()
    for k, minute, kwh, gap in rows:
        p = out[k]
        p.kwh_by_minute[minute] = float(kwh)
        p.unplaced_kwh += float(gap)
    return out


def cost_by_band(tariff: Tariff, profile: DayProfile) -> list[BandCost]:
    """One line per band (same name and price summed), the time outside every band at the flat
    price, and energy of unknown time at the flat price; a price that is not set gives no cost."""
    lines: dict[tuple[str, float | None], BandCost] = {}

    def add(name: str, price: float | None, kwh: float) -> None:
        line = lines.setdefault((name, price), BandCost(name, price, 0.0, 0.0 if price is not None else None))
        line.kwh += kwh
        if price is not None:
            line.cost_cny = (line.cost_cny or 0.0) + kwh * price

    owner: dict[int, TariffBand] = {}
    for band in tariff.bands:
        owner.update(dict.fromkeys(band.minutes(), band))
    for minute, kwh in sorted(profile.kwh_by_minute.items()):
        band = owner.get(minute)
        if band is None:
            add(NO_BAND, tariff.flat_cny_per_kwh, kwh)
        else:
            add(band.name, band.price_cny_per_kwh, kwh)
    if profile.unplaced_kwh:
        add(UNPLACED, tariff.flat_cny_per_kwh, profile.unplaced_kwh)
    return list(lines.values())
