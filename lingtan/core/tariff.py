"""Electricity cost by time-of-use band (docs/domain.md "Time-of-use cost").

Bands are in the site's local time. Grid import is read per minute of the local day from the
15-minute rollups (1-minute rollups at the window's ragged edges, or throughout when a band edge
or the zone's offset is not on a quarter hour), each bucket priced by the band its start falls in;
the flat price applies only where no band does. Energy a counter counted across a gap has no
known time of day, so it cannot be given a band: it is priced at the flat price on a line of its
own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from lingtan.core.rollups import MINUTE
from lingtan.core.site_schema import SiteParams, Tariff, TariffBand
from lingtan.kernel.timegrid import ceil_time, floor_time

QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
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


def aligned(tariff: Tariff, tz: ZoneInfo, a: datetime, b: datetime, width: timedelta = QUARTER) -> bool:
    """Every band edge on a multiple of ``width`` (the quarter hour, the hour), and the zone's offset
    too at ``a`` and ``b``: then a rollup bucket of that width lies in one band."""
    step = int(width.total_seconds() // 60)
    edges = [minute_of_day(t) for band in tariff.bands for t in (band.start, band.end)]
    offsets = [t.astimezone(tz).utcoffset() or timedelta() for t in (a, b)]
    return all(m % step == 0 for m in edges) and all(o % width == timedelta() for o in offsets)


def quarter_aligned(tariff: Tariff, tz: ZoneInfo, a: datetime, b: datetime) -> bool:
    """Every band edge on the quarter hour, and the zone's offset too at ``a`` and ``b``."""
    return aligned(tariff, tz, a, b, QUARTER)


def _parts(tariff: Tariff, tz: ZoneInfo, a1: datetime, b1: datetime) -> list[tuple[str, datetime, datetime]]:
    """[a1, b1) as rollup pieces, the coarsest the band edges allow: hours in the middle where every
    edge is on the hour (a quarter of the rows of quarter hours, which a year of them makes count),
    quarter hours around them, minutes at the ragged ends."""
    if not aligned(tariff, tz, a1, b1, QUARTER) or ceil_time(a1, QUARTER) >= floor_time(b1, QUARTER):
        return [("readings_1m", a1, b1)] if a1 < b1 else []
    q0, q1 = ceil_time(a1, QUARTER), floor_time(b1, QUARTER)
    if not aligned(tariff, tz, a1, b1, HOUR) or ceil_time(q0, HOUR) >= floor_time(q1, HOUR):
        return [("readings_1m", a1, q0), ("readings_15m", q0, q1), ("readings_1m", q1, b1)]
    h0, h1 = ceil_time(q0, HOUR), floor_time(q1, HOUR)
    return [("readings_1m", a1, q0), ("readings_15m", q0, h0), ("readings_1h", h0, h1),
            ("readings_15m", h1, q1), ("readings_1m", q1, b1)]


def tariffs_in(params: SiteParams, timezone: str, a: datetime, b: datetime
               ) -> list[tuple[Tariff, datetime, datetime]]:
    """[a, b) cut at the site-local midnights where the tariff in force changes, each piece with its
    tariff: the dated tariff covering its day, else ``params.tariff``."""
    if not params.tariffs:
        return [(params.tariff, a, b)]
    tz = ZoneInfo(timezone)
    days = {t.valid_from for t in params.tariffs} | {t.valid_to + timedelta(days=1) for t in params.tariffs
                                                     if t.valid_to is not None}
    cuts = sorted(c for c in (datetime.combine(d, time(), tz) for d in days) if a < c < b)
    out: list[tuple[Tariff, datetime, datetime]] = []
    for lo, hi in zip([a, *cuts], [*cuts, b], strict=True):
        day = lo.astimezone(tz).date()
        in_force = next((t for t in params.tariffs if t.covers(day)), params.tariff)
        if out and out[-1][0] is in_force:
            out[-1] = (in_force, out[-1][1], hi)
        else:
            out.append((in_force, lo, hi))
    return out


def by_time_of_day(params: SiteParams) -> bool:
    """Whether cost needs energy by time of day: bands, or prices that change on a date."""
    return bool(params.tariff.bands or params.tariffs)


def day_profiles(conn: sa.Connection, meters: list[str], windows: Sequence[tuple[datetime, datetime, Tariff]],
                 timezone: str) -> list[DayProfile]:
    """Grid import of ``meters`` in each window [a, b) by local minute of the day (window rounded to
    whole minutes as ``lingtan.core.counters.counter_energy`` rounds it, at the resolution its
    tariff's band edges need), in order, in one statement."""
    if not meters:
        return [DayProfile({}, 0.0) for _ in windows]
    tz = ZoneInfo(timezone)
    params: dict[str, object] = {"m": meters, "tz": timezone}
    branches = []
    for k, (a, b, tariff) in enumerate(windows):
        a1, b1 = ceil_time(a, MINUTE), ceil_time(b, MINUTE)
        for i, (table, lo, hi) in enumerate(_parts(tariff, tz, a1, b1)):
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


@dataclass
class NodeProfile:
    """A metering-structure node's electricity by local minute of the day, and its largest
    15-minute energy (the maximum demand ÷ 4) with the start of that quarter hour."""

    day: DayProfile
    peak_kwh: float | None
    peak_at: datetime | None


def form_columns(forms: Sequence[Mapping[tuple[str, str], float]]) -> dict[str, list]:
    """The forms as the columns ``n`` (form index), ``m`` (meter), ``q`` (quantity), ``c``
    (coefficient) that a statement unnests into a table ``k`` to join the rollups with."""
    cols: dict[str, list] = {"n": [], "m": [], "q": [], "c": []}
    for i, form in enumerate(forms):
        for (meter, quantity), coef in form.items():
            cols["n"].append(i)
            cols["m"].append(meter)
            cols["q"].append(quantity)
            cols["c"].append(coef)
    return cols


def node_profiles(conn: sa.Connection, forms: Sequence[Mapping[tuple[str, str], float]], a: datetime,
                  b: datetime, timezone: str, tariff: Tariff) -> list[NodeProfile]:
    """For each signed combination of counters ``{(meter, quantity): coefficient}``: its energy in
    [a, b) by local minute of the day (tiled as ``day_profiles`` tiles a window) and its maximum
    over the whole quarter hours inside the window, in one statement."""
    if not forms:
        return []
    tz = ZoneInfo(timezone)
    a1, b1 = ceil_time(a, MINUTE), ceil_time(b, MINUTE)
    q0, q1 = ceil_time(a1, QUARTER), floor_time(b1, QUARTER)
    fine = not quarter_aligned(tariff, tz, a1, b1) or q0 >= q1
    parts = [("readings_1m", a1, b1)] if fine else [
        ("readings_1m", a1, q0), ("readings_15m", q0, q1), ("readings_1m", q1, b1)]
    params: dict[str, object] = {**form_columns(forms), "tz": timezone, "q0": q0, "q1": q1}
    branches = []
    for k, (table, lo, hi) in enumerate(parts):
        if lo < hi:
            params[f"a{k}"], params[f"b{k}"] = lo, hi
            branches.append(f"SELECT k.n, r.bucket, k.c * r.delta AS delta, k.c * r.gap_delta AS gap_delta,"
                            f" {'true' if table == 'readings_15m' else 'false'} AS quarter"
                            f" FROM {table} r JOIN k ON r.meter_id = k.m AND r.quantity = k.q"
                            f" WHERE r.bucket >= :a{k} AND r.bucket < :b{k}")
    out = [NodeProfile(DayProfile({}, 0.0), None, None) for _ in forms]
    if not branches:
        return out
    # The 1-minute fallback (bands off the quarter hour) sums its minutes into quarter hours for
    # the demand; the 15-minute tiles are quarter hours already.
    rows = conn.execute(sa.text(
        "WITH k AS (SELECT * FROM unnest(CAST(:n AS int[]), CAST(:m AS text[]), CAST(:q AS text[]),"
        " CAST(:c AS float8[])) AS k(n, m, q, c)),"
        f" t AS MATERIALIZED (SELECT * FROM ({' UNION ALL '.join(branches)}) u),"
        " quarters AS (SELECT n, date_bin('15 minutes', bucket, :q0) AS qb, sum(delta) AS kwh FROM t"
        "   WHERE bucket >= :q0 AND bucket < :q1 GROUP BY 1, 2),"
        " peaks AS (SELECT DISTINCT ON (n) n, qb, kwh FROM quarters ORDER BY n, kwh DESC, qb)"
        " SELECT 0 AS kind, n, (extract(hour FROM bucket AT TIME ZONE :tz) * 60"
        "  + extract(minute FROM bucket AT TIME ZONE :tz))::int, coalesce(sum(delta), 0),"
        "  coalesce(sum(gap_delta), 0), NULL::timestamptz FROM t GROUP BY 2, 3"
        " UNION ALL SELECT 1, n, 0, kwh, 0, qb FROM peaks"
    ), params).all()
    for kind, i, minute, kwh, gap, at in rows:
        p = out[i]
        if kind == 0:
            p.day.kwh_by_minute[minute] = float(kwh)
            p.day.unplaced_kwh += float(gap)
        else:
            p.peak_kwh, p.peak_at = float(kwh), at
    return out


@lru_cache(maxsize=64)
def _owners(edges: tuple[tuple[str, str], ...]) -> dict[int, int]:
    """Minute of the local day → index of the band it falls in (the later band where two would);
    the same few tariffs price every node of a structure, so this is worked out once each."""
    owner: dict[int, int] = {}
    for i, (start, end) in enumerate(edges):
        band = TariffBand(name="band", start=start, end=end, price_cny_per_kwh=0)
        owner.update(dict.fromkeys(band.minutes(), i))
    return owner


def cost_by_band(tariff: Tariff, profile: DayProfile) -> list[BandCost]:
    """One line per band (same name and price summed), the time outside every band at the flat
    price, and energy of unknown time at the flat price; a price that is not set gives no cost."""
    lines: dict[tuple[str, float | None], BandCost] = {}

    def add(name: str, price: float | None, kwh: float) -> None:
        line = lines.setdefault((name, price), BandCost(name, price, 0.0, 0.0 if price is not None else None))
        line.kwh += kwh
        if price is not None:
            line.cost_cny = (line.cost_cny or 0.0) + kwh * price

    owner = _owners(tuple((band.start, band.end) for band in tariff.bands))
    for minute, kwh in sorted(profile.kwh_by_minute.items()):
        i = owner.get(minute)
        band = tariff.bands[i] if i is not None else None
        if band is None:
            add(NO_BAND, tariff.flat_cny_per_kwh, kwh)
        else:
            add(band.name, band.price_cny_per_kwh, kwh)
    if profile.unplaced_kwh:
        add(UNPLACED, tariff.flat_cny_per_kwh, profile.unplaced_kwh)
    return list(lines.values())


def merged(lines: Sequence[BandCost]) -> list[BandCost]:
    """Band lines of several tariff pieces, one line per band name and price."""
    out: dict[tuple[str, float | None], BandCost] = {}
    for line in lines:
        old = out.get((line.band, line.price_cny_per_kwh))
        if old is None:
            out[(line.band, line.price_cny_per_kwh)] = BandCost(line.band, line.price_cny_per_kwh, line.kwh,
                                                               line.cost_cny)
        else:
            old.kwh += line.kwh
            known = old.cost_cny is not None and line.cost_cny is not None
            old.cost_cny = old.cost_cny + line.cost_cny if known else None  # type: ignore[operator]
    return list(out.values())


def total(lines: Sequence[BandCost]) -> float | None:
    """The cost of all lines; unknown when energy was used at a price that is not set."""
    costs = [b.cost_cny for b in lines if b.kwh]
    return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
