"""Activity data entered by hand: fuel no meter measures (forklift and vehicle diesel, LPG,
gasoline, fuel oil, coal, bottled gas) and refrigerant top-ups, each with its evidence.

Entries are stored as entered (amount, unit, density) and converted here: liquid fuels to
tonnes through the density the entry states, natural gas to standard m³, refrigerant to tonnes.
The KPI engine adds them to Scope 1 and tce like metered fuel (docs/domain.md "Activity data"):

- an entry covers its days in the site's zone, [first day 00:00, day after the last 00:00); a
  window counts the share of that time it overlaps, so an entry of one day counts whole in a
  day, month or year window that holds the day, and in part in a rolling window;
- fuels take the factor library's CO2 and GB/T 2589 tce factors (with the site's overrides)
  for the year of each piece of the window;
- a refrigerant top-up is taken as emitted (it replaces what leaked): t × GWP-100, no tce.

Write functions run inside the caller's transaction and do not commit.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from lingtan.core import queries, rowsync
from lingtan.core.carbon import convert
from lingtan.core.factors import GWP_UNIT, Factor, factor
from lingtan.core.figures import CarrierLine, Totals
from lingtan.core.site_schema import ActivityEntry
from lingtan.kernel import clock
from lingtan.kernel.quantities import quantity

if TYPE_CHECKING:
    from lingtan.core.site_model import SiteEnergyModel

SOURCE = "activity data"
# The fields that make an entry what it is; who entered it and when do not.
CONTENT = ("period_start", "period_end", "date", "carrier", "amount", "unit", "density_kg_per_l", "gas",
           "gwp", "gwp_source", "evidence", "note")


class StoredActivity(ActivityEntry):
    id: int
    entered_by: str
    entered_at: datetime
    amount_canonical: float
    unit_canonical: str


class DuplicateEntry(ValueError):
    """The same entry (same evidence, dates, carrier and amount) is already recorded: counting it
    twice would double its emissions."""

    def __init__(self, existing: int) -> None:
        super().__init__(f"this entry is already recorded as activity data entry {existing}")
        self.existing = existing


def canonical(e: ActivityEntry) -> tuple[float, str]:
    """The entry's amount in its carrier's canonical unit: m³ of natural gas, else tonnes."""
    q = quantity(e.amount, e.unit)
    if e.carrier == "natural_gas":
        return float(q.to("m ** 3").magnitude), "m3"
    if e.density_kg_per_l is not None:  # a liquid fuel given by volume (the schema insists)
        return float(q.to("L").magnitude) * e.density_kg_per_l / 1000.0, "t"
    return float(q.to("t").magnitude), "t"


def content(e: ActivityEntry) -> Hashable:
    return tuple((k, getattr(e, k)) for k in CONTENT)


# --- storage ---------------------------------------------------------------------------------

_COLUMNS = ("id, period_start, period_end, carrier, amount, unit, density_kg_per_l, gas, gwp, gwp_source,"
            " evidence, note, entered_by, entered_at")


def _stored(row: sa.Row) -> StoredActivity:
    entry = ActivityEntry.model_validate(
        {k: v for k, v in row._mapping.items() if k in CONTENT and v is not None})
    amount, unit = canonical(entry)
    return StoredActivity(id=row.id, entered_by=row.entered_by, entered_at=row.entered_at,
                          amount_canonical=amount, unit_canonical=unit,
                          **entry.model_dump(exclude_none=True))


def _site(conn: sa.Connection, site_id: str, lock: bool = False) -> None:
    found = conn.execute(sa.text("SELECT 1 FROM sites WHERE id = :s" + (" FOR UPDATE" if lock else "")),
                         {"s": site_id}).first()
    if found is None:
        raise queries.NotFound(f"site {site_id!r} not found")


def list_entries(conn: sa.Connection, site_id: str, limit: int | None = None, offset: int = 0
                 ) -> tuple[list[StoredActivity], int]:
    """One page of a site's entries, oldest day first, and how many there are in all."""
    _site(conn, site_id)
    rows = conn.execute(sa.text(
        f"SELECT {_COLUMNS} FROM activity_data WHERE site_id = :s"
        " ORDER BY period_start, period_end, id LIMIT :n OFFSET :o"), {"s": site_id, "n": limit, "o": offset})
    total = conn.execute(sa.text("SELECT count(*) FROM activity_data WHERE site_id = :s"),
                         {"s": site_id}).scalar_one()
    return [_stored(r) for r in rows], total


def entries_between(conn: sa.Connection, site_id: str, first: date, end: date) -> list[StoredActivity]:
    """Entries with a day in [first, end)."""
    rows = conn.execute(sa.text(
        f"SELECT {_COLUMNS} FROM activity_data WHERE site_id = :s AND period_start < :e AND period_end > :f"
        " ORDER BY period_start, id"), {"s": site_id, "f": first, "e": end})
    return [_stored(r) for r in rows]


def _insert(conn: sa.Connection, site_id: str, e: ActivityEntry, entered_by: str, now: datetime) -> int:
    return int(conn.execute(sa.text(
        "INSERT INTO activity_data (site_id, period_start, period_end, carrier, amount, unit,"
        " density_kg_per_l, gas, gwp, gwp_source, evidence, note, entered_by, entered_at)"
        " VALUES (:site, :start, :end, :carrier, :amount, :unit, :density, :gas, :gwp, :gwp_source,"
        " :evidence, :note, :by, :at) RETURNING id"),
        {"site": site_id, "start": e.first_day, "end": e.end_day, "carrier": e.carrier, "amount": e.amount,
         "unit": e.unit, "density": e.density_kg_per_l, "gas": e.gas, "gwp": e.gwp,
         "gwp_source": e.gwp_source, "evidence": e.evidence, "note": e.note, "by": entered_by, "at": now},
    ).scalar_one())


def add_entry(conn: sa.Connection, site_id: str, e: ActivityEntry, entered_by: str,
              now: datetime | None = None) -> StoredActivity:
    """Record one entry; the same entry twice is refused (``DuplicateEntry``)."""
    _site(conn, site_id, lock=True)  # serialises the duplicate check per site
    existing, _ = list_entries(conn, site_id)
    same = next((s.id for s in existing if content(s) == content(e)), None)
    if same is not None:
        raise DuplicateEntry(same)
    at = now or clock.now()
    new_id = _insert(conn, site_id, e, entered_by, at)
    amount, unit = canonical(e)
    return StoredActivity(id=new_id, entered_by=entered_by, entered_at=at, amount_canonical=amount,
                          unit_canonical=unit, **e.model_dump(exclude_none=True))


def delete_entry(conn: sa.Connection, site_id: str, entry_id: int) -> None:
    _site(conn, site_id)
    deleted = conn.execute(sa.text("DELETE FROM activity_data WHERE id = :id AND site_id = :s"),
                           {"id": entry_id, "s": site_id}).rowcount
    if not deleted:
        raise queries.NotFound(f"activity data entry {entry_id} not found for site {site_id!r}")


def duplicate_in(entries: Sequence[ActivityEntry]) -> tuple[int, int] | None:
    """(earlier, later) indexes of the first entry listed twice, or None."""
    seen: dict[Hashable, int] = {}
    for i, e in enumerate(entries):
        key = content(e)
        if key in seen:
            return seen[key], i
        seen[key] = i
    return None


def sync(conn: sa.Connection, site_id: str, wanted: Sequence[ActivityEntry], entered_by: str,
         now: datetime | None = None) -> tuple[int, int]:
    """Make the site's entries exactly ``wanted``; unchanged entries keep their id and who entered
    them when. Returns (added, removed)."""
    stored, _ = list_entries(conn, site_id)
    remove, add = rowsync.diff(stored, wanted, content)
    if remove:
        conn.execute(sa.text("DELETE FROM activity_data WHERE id = ANY(:ids)"), {"ids": remove})
    at = now or clock.now()
    for w in add:
        _insert(conn, site_id, w, entered_by, at)
    added = len(add)
    return added, len(remove)


# --- the KPI engine --------------------------------------------------------------------------


def _midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), tzinfo=tz)


def share_in(e: ActivityEntry, timezone: str, a: datetime, b: datetime) -> float:
    """The part of the entry inside [a, b): the overlap of its days with the window ÷ their length."""
    tz = ZoneInfo(timezone)
    start, end = _midnight(e.first_day, tz), _midnight(e.end_day, tz)
    overlap = (min(end, b) - max(start, a)).total_seconds()
    return max(overlap, 0.0) / (end - start).total_seconds()


def fuel_overrides(model: SiteEnergyModel, year: int) -> dict[str, Factor]:
    """The site's overrides for ``year``; oil-field gas takes GB/T 2589's oil-field tce value
    unless the site overrides it itself (the rule metered gas follows in ``figures.piece``)."""
    overrides = model.overrides_for(year)
    if model.params.natural_gas_origin == "oil_field" and "tce:natural_gas" not in overrides:
        f = factor(model.factor_set, "tce", "natural_gas_oil_field")
        overrides["tce:natural_gas"] = Factor(f.value, f.unit, None, None, f.source, key=f.key, kind="tce",
                                              subject="natural_gas")
    return overrides


@dataclass
class _Line:
    amount: float = 0.0
    unit: str = "t"
    tco2e: float = 0.0
    tce: float | None = 0.0
    shares: dict[int, float] = field(default_factory=dict)  # entry id -> share counted


def gwp_factor(e: ActivityEntry) -> Factor:
    return Factor(e.gwp or 0.0, GWP_UNIT, None, None, e.gwp_source or "", key=f"gwp:{e.gas}:{e.gwp:g}",
                  kind="gwp", subject=e.gas or "", label=f"{e.gas} GWP-100")


def entries_for(conn: sa.Connection, model: SiteEnergyModel, pieces: Sequence[tuple[int, datetime, datetime]]
                ) -> list[StoredActivity]:
    """The entries with a day in the local days ``pieces`` touch (of one window or several)."""
    if not pieces:
        return []
    zone = ZoneInfo(model.site.timezone)
    first = min(a for _, a, _ in pieces).astimezone(zone).date()
    last = (max(b for _, _, b in pieces) - timedelta(microseconds=1)).astimezone(zone).date()
    return entries_between(conn, model.site.id, first, last + timedelta(days=1))


def include(conn: sa.Connection, model: SiteEnergyModel, pieces: Sequence[tuple[int, datetime, datetime]],
            t: Totals, entries: Sequence[StoredActivity] | None = None) -> None:
    """Add the site's activity data to a window's Scope 1 and tce (``pieces``: the window cut at
    local New Year, as the KPI engine converts it), with one line per carrier, the factors used
    and notes saying what was included. ``entries``: read already, for these pieces or more (an
    entry outside them has no share in them and is left out)."""
    _unmetered_boiler_notes(model, t)
    if not pieces:
        return
    tz = model.site.timezone
    if entries is None:
        entries = entries_for(conn, model, pieces)
    entries = [e for e in entries if any(share_in(e, tz, a, b) > 0 for _, a, b in pieces)]
    lines: dict[str, _Line] = {}
    for year, a, b in pieces:
        overrides = fuel_overrides(model, year)
        for e in entries:
            share = share_in(e, tz, a, b)
            if share <= 0:
                continue
            value, unit = canonical(e)
            part = value * share
            line = lines.setdefault(e.carrier, _Line(unit=unit))
            line.amount += part
            line.shares[e.id] = line.shares.get(e.id, 0.0) + share
            if e.carrier == "refrigerant":
                f = gwp_factor(e)
                t.factors[f.key] = f
                co2, tce = part * f.value, None
                line.tce = None
            else:
                c = convert(e.carrier, part, unit, factor_set=model.factor_set, year=year,
                            overrides=overrides)
                for f in c.factors:
                    t.factors[f.key] = f
                t.notes.extend(n for n in c.notes if n not in t.notes)
                co2, tce = c.tco2e or 0.0, c.tce or 0.0
                t.tce += tce
                line.tce = None if line.tce is None else line.tce + tce
            t.scope1 += co2
            line.tco2e += co2
    by_id = {e.id: e for e in entries}
    for carrier, line in lines.items():
        evidence = [_evidence(by_id[i], share) for i, share in line.shares.items()]
        t.lines[(f"{SOURCE}:{carrier}", 1)] = CarrierLine(
            carrier, 1, line.amount, line.unit, line.tco2e, line.tco2e, line.tce, 1.0, source=SOURCE,
            evidence=evidence)
    if lines:
        t.notes.append(_summary(lines, by_id))


def _evidence(e: StoredActivity, share: float) -> str:
    text = e.evidence
    if e.carrier == "refrigerant":
        text += f" ({e.gas}, GWP {e.gwp:g})"
    if share < 1 - 1e-9:
        last = e.end_day - timedelta(days=1)
        text += f" ({share:.1%} of {e.first_day} to {last})"
    return text


def _summary(lines: dict[str, _Line], by_id: dict[int, StoredActivity]) -> str:
    n = sum(len(line.shares) for line in lines.values())
    partial = sum(1 for line in lines.values() for s in line.shares.values() if s < 1 - 1e-9)
    text = (f"Activity data: {n} entr{'y' if n == 1 else 'ies'} entered by hand included in Scope 1 and "
            f"tce ({', '.join(sorted(lines))}), each counted in proportion to the part of its days "
            "(site-local) inside the window")
    text += f"; {partial} of them only in part." if partial else "."
    if "refrigerant" in lines:
        sources = sorted({by_id[i].gwp_source or "" for i in lines["refrigerant"].shares})
        text += (" Refrigerant top-ups count as emitted (they replace what leaked): mass × GWP-100 "
                 f"({'; '.join(sources)}); refrigerant has no tce.")
    return text


def _unmetered_boiler_notes(model: SiteEnergyModel, t: Totals) -> None:
    # Only natural gas has a canonical counter; a boiler meter on another fuel adds nothing, so
    # the figures say so rather than look complete.
    for m in model.meters_with_role("boiler_fuel"):
        fuel = m.params.fuel or model.params.boiler_fuel
        if fuel != "natural_gas":
            note = (f"Boiler meter {m.id} burns {fuel}: metered {fuel} is not counted (only natural gas "
                    "meters are); enter its fuel as activity data.")
            if note not in t.notes:
                t.notes.append(note)
