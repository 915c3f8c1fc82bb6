"""Closed periods: a month's or year's inventory frozen when the site signs it off.

Without closing, a month's figures drift: a reading that arrives late, or a factor the site
enters afterwards, silently changes a number that was already reported. Closing stores the
engine's results for the period as they stood (the KPI window, the GHG inventory and the
energy balance, serialized exactly as the API sends them), the factors used with their sources,
the coverage of every figure, who closed it and when. From then on the reports show those
stored figures; the engine's figures for the same window, recomputed now, appear next to them
only as a *restatement*, figure by figure, with the reason where one can be named (docs/domain.md,
"Closed periods").

The KPI engine and the report builders are called as black boxes and their results treated
as JSON, so this module does not depend on which figures they hold: every numeric field the
engine adds is stored and compared without a change here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy.dialects.postgresql import JSONB

from lingtan.core import report_formats, reports
from lingtan.core.factors import Factor
from lingtan.core.kpi import WindowKpis, window_kpis
from lingtan.core.queries import get_site
from lingtan.core.report_formats import Column, Table
from lingtan.kernel import clock, periods

Period = Literal["month", "year"]
PERIODS: tuple[str, ...] = ("month", "year")
Status = Literal["running", "open", "closed"]
ReportKind = Literal["ghg-inventory", "energy-balance"]
# Two figures are the same when they differ by float noise only: summing the same readings in
# another order moves the last digits, never the ninth significant one. 1e-9 absolute is a
# milligram of CO2 in tonnes and a microwatt-hour in kWh.
REL_NOISE = 1e-9
ABS_NOISE = 1e-9
MAX_NOTE = 2000


class PeriodStateError(Exception):
    """The request does not fit the period's state (running, already closed, not closed)."""


class PeriodRunning(PeriodStateError):
    pass


class AlreadyClosed(PeriodStateError):
    pass


class NotClosed(PeriodStateError):
    pass


class StoredLayoutError(RuntimeError):
    """A stored closing no longer fits the report's current layout."""


# --- periods ---------------------------------------------------------------------------------


@dataclass
class PeriodRef:
    kind: Period
    date: Annotated[date, Field(description="first day of the period, in the site's calendar",
                                examples=["2026-11-01"])]
    label: Annotated[str, Field(examples=["2026-11"])]
    start: Annotated[datetime, Field(description="local time in the site's zone")]
    end: Annotated[datetime, Field(description="local time, exclusive")]


def period_ref(period: str, day: date, timezone: str) -> PeriodRef:
    """The month or year containing ``day`` in the site's calendar (bounds from ``periods.calendar``)."""
    if period not in PERIODS:
        raise periods.PeriodError("period", f"unknown period {period!r} (known: {', '.join(PERIODS)})")
    try:
        start, end = periods.calendar(period, day, timezone)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, periods.PeriodError):
            raise
        # The calendar's edges (year 1, year 9999): no period there can be closed or reported.
        raise periods.PeriodError("date", f"{day.isoformat()} is too close to the end of the calendar"
                                  ) from None
    tz = ZoneInfo(timezone)
    first = start.astimezone(tz).date()
    label = f"{first.year}-{first.month:02d}" if period == "month" else str(first.year)
    kind: Period = "month" if period == "month" else "year"
    return PeriodRef(kind, first, label, start.astimezone(tz), end.astimezone(tz))


def _utc(p: PeriodRef) -> tuple[datetime, datetime]:
    return p.start.astimezone(UTC), p.end.astimezone(UTC)


def _state(p: PeriodRef, closed: bool, now: datetime) -> Status:
    if closed:
        return "closed"
    return "running" if p.end > now else "open"


# --- serialization: the encoder the routes use -------------------------------------------------


@cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def to_json(obj: Any) -> Any:
    """A result as the API sends it: the route's response model serializer, in JSON mode."""
    return _adapter(type(obj)).dump_python(obj, mode="json")


def from_json(cls: type, data: Any) -> Any:
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        raise StoredLayoutError(f"a stored closing does not fit the current {cls.__name__} layout: {exc}"
                                ) from None


# --- stored closings ---------------------------------------------------------------------------


@dataclass
class ClosingRecord:
    id: int
    closed_by: Annotated[str, Field(description="the API key (key:<prefix> <name>), user or CLI account")]
    closed_at: datetime
    note: str
    reopened_by: str | None = None
    reopened_at: datetime | None = None
    reopen_reason: str | None = None


@dataclass
class _Stored:
    record: ClosingRecord
    kpis: dict[str, Any]
    inventory: dict[str, Any]
    energy_balance: dict[str, Any]
    factors: list[dict[str, Any]]
    coverage: dict[str, float]


_COLUMNS = ("id, closed_by, closed_at, note, reopened_by, reopened_at, reopen_reason, kpis, inventory,"
            " energy_balance, factors, coverage")


def _stored(row: sa.Row[Any]) -> _Stored:
    return _Stored(ClosingRecord(*row[:7]), *row[7:])


def _in_force(conn: sa.Connection, site_id: str, p: PeriodRef, lock: bool = False) -> _Stored | None:
    row = conn.execute(sa.text(
        f"SELECT {_COLUMNS} FROM period_closings WHERE site_id = :s AND period = :k AND period_start = :d"
        " AND reopened_at IS NULL" + (" FOR UPDATE" if lock else "")),
        {"s": site_id, "k": p.kind, "d": p.date}).first()
    return None if row is None else _stored(row)


def _history(conn: sa.Connection, site_id: str, p: PeriodRef) -> list[ClosingRecord]:
    rows = conn.execute(sa.text(
        "SELECT id, closed_by, closed_at, note, reopened_by, reopened_at, reopen_reason FROM period_closings"
        " WHERE site_id = :s AND period = :k AND period_start = :d ORDER BY closed_at, id"),
        {"s": site_id, "k": p.kind, "d": p.date})
    return [ClosingRecord(*r) for r in rows]


# --- figures as JSON leaves ----------------------------------------------------------------------

# Parts of a result that are descriptions, not figures (the factors are compared on their own).
_NOT_FIGURES = frozenset({"site", "period", "factors", "notes", "purchases", "gb19153_limits"})
# Fields that name a list element rather than measure anything.
_IDENTITY = ("key", "meter_id", "carrier", "item", "month")
_SKIP = frozenset({*_IDENTITY, "scope", "coverage", "unit"})


@dataclass(frozen=True)
class _Leaf:
    value: float | None
    unit: str | None
    coverage: float | None
    carrier: str | None


def _unit(name: str, node: Mapping[str, Any]) -> str | None:
    if name in ("value", "amount") and isinstance(node.get("unit"), str):
        return node["unit"]
    if name.startswith("tco2e") or name.endswith("_t"):
        return "tCO2e"
    if name == "tce":
        return "tce"
    if name.endswith("_kwh"):
        return "kWh"
    if name in ("share", "efficiency", "load_ratio"):
        return "ratio"
    return None


def _label(item: Any, index: int) -> str:
    if isinstance(item, Mapping):
        for key in _IDENTITY:
            if isinstance(item.get(key), str):
                return item[key]
    return str(index)


def leaves(node: Any, path: str = "", carrier: str | None = None) -> Iterator[tuple[str, _Leaf]]:
    """Every number of a result, named by its path (``carbon.scope1_t``, ``lines[natural_gas].tce``).

    A mapping with a ``coverage`` is a figure (or a report line): its numbers share that coverage.
    """
    if isinstance(node, Mapping):
        cov = node.get("coverage")
        cov = float(cov) if isinstance(cov, int | float) and not isinstance(cov, bool) else None
        carrier = node["carrier"] if isinstance(node.get("carrier"), str) else carrier
        for name, v in node.items():
            if name in _NOT_FIGURES or name in _SKIP:
                continue
            sub = path if name == "value" else f"{path}.{name}" if path else name
            if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
                if name == "value" or cov is not None or v is not None:
                    yield sub, _Leaf(None if v is None else float(v), _unit(name, node), cov, carrier)
            elif isinstance(v, Mapping | list):
                yield from leaves(v, sub, carrier)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, Mapping | list):
                yield from leaves(item, f"{path}[{_label(item, i)}]", carrier)


def coverage_map(result: Mapping[str, Any]) -> dict[str, float]:
    """{figure: coverage} for every figure of a result that carries one."""
    return {p: leaf.coverage for p, leaf in leaves(result) if leaf.coverage is not None}


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL_NOISE, abs_tol=ABS_NOISE)


# --- restatement -----------------------------------------------------------------------------


@dataclass
class FactorChange:
    kind: str
    subject: str
    closed: Annotated[Factor | None, Field(description="the factor the closing used; null if none")]
    now: Annotated[Factor | None, Field(description="the factor a recomputation uses now; null if none")]
    text: str


@dataclass
class Reason:
    kind: Literal["later_data", "factor_changed", "green_power_changed", "unknown"]
    text: str


@dataclass
class FigureChange:
    figure: Annotated[str, Field(description="path in the result: totals.scope1_t, lines[natural_gas].tce",
                                 examples=["totals.scope2_location_t"])]
    unit: str | None
    closed: float | None
    now: float | None
    difference: Annotated[float | None, Field(description="now − closed; null when either is null")]
    differs: Annotated[bool, Field(description="the difference is beyond float noise (1e-9)")]
    closed_coverage: float | None
    now_coverage: float | None
    reasons: Annotated[list[Reason], Field(description="why it differs, when that can be said")] = field(
        default_factory=list)


@dataclass
class Restatement:
    """The period's figures recomputed now, against those it was closed with."""

    computed_at: datetime
    differs: Annotated[bool, Field(description="any figure differs beyond float noise")]
    figures: Annotated[list[FigureChange], Field(description=(
        "every figure (period detail) or only those that differ (reports)"))]
    factor_changes: list[FactorChange]
    green_power_changed: bool = False
    notes: list[str] = field(default_factory=list)


_CARBON_KINDS = ("grid", "grid_residual", "grid_fossil", "co2", "steam_heat")


def _factor_key(f: Mapping[str, Any]) -> tuple[str, str]:
    return str(f.get("kind", "")), str(f.get("subject", ""))


def _factor_text(kind: str, subject: str, old: Factor | None, new: Factor | None) -> str:
    def show(f: Factor) -> str:
        return f"{f.value:g} {f.unit} ({f.source})"

    name = (new or old).label if (new or old) else subject  # type: ignore[union-attr]
    if old is None:
        return f"{name} ({kind}) now used: {show(new)}"  # type: ignore[arg-type]
    if new is None:
        return f"{name} ({kind}) no longer used: was {show(old)}"
    return f"{name} ({kind}): {show(old)} → {show(new)}"


def factor_changes(closed: list[Mapping[str, Any]], now: list[Mapping[str, Any]]) -> list[FactorChange]:
    """Factors whose value, unit or source differ, matched on kind and subject (an override has
    its own key but stands for the library factor it replaces)."""
    old = {_factor_key(f): f for f in closed}
    new = {_factor_key(f): f for f in now}
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None and same(float(a["value"]), float(b["value"])) \
                and a.get("unit") == b.get("unit") and a.get("source") == b.get("source"):
            continue
        fa = from_json(Factor, a) if a is not None else None
        fb = from_json(Factor, b) if b is not None else None
        out.append(FactorChange(key[0], key[1], fa, fb, _factor_text(key[0], key[1], fa, fb)))
    return out


def _factor_touches(change: FactorChange, path: str, unit: str | None, carrier: str | None) -> bool:
    """Whether a changed factor can move this figure. Carbon factors move CO2 figures and tce
    factors tce figures; a carrier's line moves only with its own factors; grid factors and the
    heat/steam factors are Scope 2, fuel factors Scope 1; the grid average moves only the
    location-based basis and the residual mix only the market-based one. It errs towards
    naming a factor: the full list of changed factors is in the restatement anyway."""
    text = f"{path} {unit or ''}".lower()
    carbon, energy = "co2" in text, "tce" in text or "kgce" in text
    relevant = {"tce": energy, "steam_heat": carbon or energy}.get(change.kind, carbon)
    if not relevant:
        return False
    grid = change.kind.startswith("grid")
    if carrier is not None:
        return carrier.startswith("electricity") if grid else carrier == change.subject
    if grid or change.subject in ("heat", "steam"):
        if "scope1" in text:
            return False
    elif change.kind == "co2" and "scope2" in text:
        return False
    return not ((change.kind == "grid" and "market" in text)
                or (change.kind == "grid_residual" and "location" in text))


_SCOPE2_CARRIERS = ("electricity", "heat", "steam")


def _moved_carriers(a: Mapping[str, _Leaf], b: Mapping[str, _Leaf]) -> set[str]:
    """Carriers whose amount or coverage changed. Amounts do not depend on factors, so a moved
    amount means the data changed; a figure's own coverage is the lowest of its inputs' and can
    stay put when one input gains data."""
    out = set()
    for path in a.keys() | b.keys():
        old, new = a.get(path), b.get(path)
        ref = old or new
        if ref is None or ref.carrier is None or not path.endswith(".amount"):
            continue
        unchanged = old is not None and new is not None and same(old.value, new.value) \
            and same(old.coverage, new.coverage)
        if not unchanged:
            out.add(ref.carrier)
    return out


def _carries(path: str, own: str | None, carrier: str) -> bool:
    """Whether a figure adds up data of ``carrier``: a line only its own; Scope 1 the fuels;
    Scope 2 and the electricity block electricity, heat and steam; totals everything."""
    if own is not None:
        return own == carrier
    scope2 = carrier.startswith(_SCOPE2_CARRIERS)
    text = path.lower()
    if "scope1" in text:
        return not scope2
    if text.startswith("electricity.") or "intensity" in text:
        return carrier.startswith("electricity")
    if "scope2" in text:
        return scope2
    return True


def _pct(c: float | None) -> str:
    return "none" if c is None else f"{c:.2%}"


def restate(closed: Mapping[str, Any], now: Mapping[str, Any], closed_factors: list[Mapping[str, Any]],
            now_factors: list[Mapping[str, Any]], computed_at: datetime, only_differing: bool = False,
            closed_purchases: list[str] | None = None, now_purchases: list[str] | None = None
            ) -> Restatement:
    """Every figure of ``closed`` against the same figure of ``now``, with the reasons known."""
    a = dict(leaves(closed))
    b = dict(leaves(now))
    changes = factor_changes(closed_factors, now_factors)
    green = closed_purchases is not None and now_purchases is not None \
        and sorted(closed_purchases) != sorted(now_purchases)
    moved = _moved_carriers(a, b)
    figures = []
    # In the order of the result recomputed now (the dataclasses' order); stored JSON has lost it.
    for path in [*b, *(p for p in a if p not in b)]:
        old, new = a.get(path), b.get(path)
        cv = old.value if old else None
        nv = new.value if new else None
        differs = not same(cv, nv)
        if only_differing and not differs:
            continue
        ref = old or new
        assert ref is not None
        oc, nc = (old.coverage if old else None), (new.coverage if new else None)
        reasons: list[Reason] = []
        if differs:
            if not same(oc, nc):
                reasons.append(Reason("later_data", f"later data arrived: coverage {_pct(oc)} → {_pct(nc)}"))
            else:
                carriers = sorted(c for c in moved if _carries(path, ref.carrier, c))
                if carriers:
                    reasons.append(Reason("later_data", f"later data arrived: the {', '.join(carriers)} "
                                                        "amounts changed"))
            for ch in changes:
                if _factor_touches(ch, path, ref.unit, ref.carrier):
                    reasons.append(Reason("factor_changed", f"factor changed: {ch.text}"))
            text = f"{path} {ref.unit or ''}".lower()
            if green and ("market" in text or "green" in text):
                reasons.append(Reason("green_power_changed", "green-power purchases for the period changed"))
            if not reasons:
                reasons.append(Reason("unknown", "no change of coverage, factor or green power explains "
                                                 "it; the site model (meters, roles, parameters) may have "
                                                 "changed"))
        diff = nv - cv if cv is not None and nv is not None else None
        figures.append(FigureChange(path, ref.unit, cv, nv, diff, differs, oc, nc, reasons))
    any_differs = any(f.differs for f in figures)
    notes = []
    if any_differs:
        notes.append("The closed figures stand; these are the same figures recomputed now. Reopen the "
                     "period (admin) and close it again to adopt them.")
    return Restatement(computed_at, any_differs, figures, changes, green, notes)


# --- closing ---------------------------------------------------------------------------------


@dataclass
class PeriodSummary:
    period: PeriodRef
    status: Annotated[Status, Field(description=(
        "running: not ended yet; open: ended, not closed (figures are provisional); closed"))]
    closing: Annotated[ClosingRecord | None, Field(description="the closing in force")]
    reopened: Annotated[int, Field(description="earlier closings of this period that were reopened")]


@dataclass
class PeriodDetail:
    site_id: str
    period: PeriodRef
    status: Status
    closing: ClosingRecord | None
    kpis: Annotated[WindowKpis | None, Field(description="the KPI figures as closed; null unless closed")]
    factors: Annotated[list[Factor] | None, Field(description="every factor the closing used, with sources")]
    coverage: Annotated[dict[str, float] | None, Field(description="coverage of each closed figure")]
    restatement: Annotated[Restatement | None, Field(description=(
        "every closed KPI figure against the same figure recomputed now; null unless closed"))]
    history: Annotated[list[ClosingRecord], Field(description="every closing of the period, reopened ones "
                                                              "included, oldest first")]


def _site_tz(conn: sa.Connection, site_id: str) -> str:
    return get_site(conn, site_id).timezone  # NotFound for an unknown site


def _merge_factors(*lists: list[Any]) -> list[dict[str, Any]]:
    known: dict[str, dict[str, Any]] = {}
    for items in lists:
        for f in items:
            known.setdefault(f["key"], f)
    return sorted(known.values(), key=lambda f: f["key"])


def close_period(conn: sa.Connection, site_id: str, period: str, day: date, closed_by: str,
                 note: str = "", now: datetime | None = None) -> PeriodDetail:
    """Store the period's figures as they stand; the caller commits.

    Refused while the period runs (it ends at local midnight in the site's zone, not UTC's)
    and when a closing is already in force.
    """
    now = now or clock.now()
    if len(note) > MAX_NOTE:
        raise ValueError(f"note: at most {MAX_NOTE} characters (got {len(note)})")
    tz = _site_tz(conn, site_id)
    p = period_ref(period, day, tz)
    if p.end > now:
        raise PeriodRunning(f"{p.kind} {p.label} is still running: it ends at {p.end.isoformat()} "
                            "(site time) and can be closed from then on")
    if _in_force(conn, site_id, p) is not None:
        raise AlreadyClosed(f"{p.kind} {p.label} is already closed; an admin can reopen it first")
    start, end = _utc(p)
    kpis = to_json(window_kpis(conn, site_id, start, end, now))
    inventory = to_json(reports.ghg_inventory(conn, site_id, p.kind, p.date, now))
    balance = to_json(reports.energy_balance(conn, site_id, p.kind, p.date, now))
    factors = _merge_factors(kpis["factors"], inventory["factors"], balance["factors"])
    coverage = coverage_map(kpis)
    try:
        with conn.begin_nested():
            conn.execute(sa.text(
                "INSERT INTO period_closings (site_id, period, period_start, start_at, end_at, timezone,"
                " kpis, inventory, energy_balance, factors, coverage, closed_by, closed_at, note)"
                " VALUES (:s, :k, :d, :a, :b, :tz, :kpis, :inv, :bal, :f, :cov, :by, :at, :note)"
            ).bindparams(*(sa.bindparam(n, type_=JSONB) for n in ("kpis", "inv", "bal", "f", "cov"))),
                {"s": site_id, "k": p.kind, "d": p.date, "a": start, "b": end, "tz": tz, "kpis": kpis,
                 "inv": inventory, "bal": balance, "f": factors, "cov": coverage, "by": closed_by, "at": now,
                 "note": note})
    except sa.exc.IntegrityError:
        # Another request closed it between the check and the insert.
        raise AlreadyClosed(f"{p.kind} {p.label} is already closed; an admin can reopen it first") from None
    return period_detail(conn, site_id, period, day, now, restated=False)


def reopen_period(conn: sa.Connection, site_id: str, period: str, day: date, reopened_by: str, reason: str,
                  now: datetime | None = None) -> PeriodDetail:
    """Take the closing out of force; it stays in the history with who reopened it and why."""
    now = now or clock.now()
    reason = reason.strip()
    if not reason:
        raise ValueError("reason: say why the period is reopened (it is kept with the closing)")
    if len(reason) > MAX_NOTE:
        raise ValueError(f"reason: at most {MAX_NOTE} characters (got {len(reason)})")
    p = period_ref(period, day, _site_tz(conn, site_id))
    stored = _in_force(conn, site_id, p, lock=True)
    if stored is None:
        raise NotClosed(f"{p.kind} {p.label} is not closed")
    conn.execute(sa.text("UPDATE period_closings SET reopened_by = :by, reopened_at = :at, reopen_reason = :r"
                         " WHERE id = :id"),
                 {"by": reopened_by, "at": now, "r": reason, "id": stored.record.id})
    return period_detail(conn, site_id, period, day, now)


def period_detail(conn: sa.Connection, site_id: str, period: str, day: date, now: datetime | None = None,
                  restated: bool = True) -> PeriodDetail:
    """The period's status, its closed figures and their restatement, and its history."""
    now = now or clock.now()
    p = period_ref(period, day, _site_tz(conn, site_id))
    stored = _in_force(conn, site_id, p)
    history = _history(conn, site_id, p)
    status = _state(p, stored is not None, now)
    if stored is None:
        return PeriodDetail(site_id, p, status, None, None, None, None, None, history)
    restatement = None
    if restated:
        start, end = _utc(p)
        kpis_now = to_json(window_kpis(conn, site_id, start, end, now))
        inv_now = to_json(reports.ghg_inventory(conn, site_id, p.kind, p.date, now))
        restatement = restate(stored.kpis, kpis_now, stored.factors,
                              _merge_factors(kpis_now["factors"], inv_now["factors"]), now,
                              closed_purchases=stored.inventory["green_power"]["purchases"],
                              now_purchases=inv_now["green_power"]["purchases"])
    return PeriodDetail(site_id, p, status, stored.record, from_json(WindowKpis, stored.kpis),
                        [from_json(Factor, f) for f in stored.factors], stored.coverage, restatement, history)


def first_data(conn: sa.Connection, site_id: str) -> datetime | None:
    """The first day bucket with a reading of any of the site's meters."""
    return conn.execute(sa.text(
        "SELECT min(r.bucket) FROM readings_1d r JOIN meters m ON m.id = r.meter_id WHERE m.site_id = :s"),
        {"s": site_id}).scalar_one()


def list_periods(conn: sa.Connection, site_id: str, period: str = "month",
                 now: datetime | None = None) -> list[PeriodSummary]:
    """Newest first: every period from the site's first data to the one running now, and any
    other period with a closing."""
    now = now or clock.now()
    tz = _site_tz(conn, site_id)
    if period not in PERIODS:
        raise periods.PeriodError("period", f"unknown period {period!r} (known: {', '.join(PERIODS)})")
    rows = conn.execute(sa.text(
        "SELECT period_start, id, closed_by, closed_at, note, reopened_by, reopened_at, reopen_reason"
        " FROM period_closings WHERE site_id = :s AND period = :k ORDER BY closed_at, id"),
        {"s": site_id, "k": period}).all()
    in_force: dict[date, ClosingRecord] = {}
    reopened: dict[date, int] = {}
    for r in rows:
        record = ClosingRecord(*r[1:])
        if record.reopened_at is None:
            in_force[r[0]] = record
        else:
            reopened[r[0]] = reopened.get(r[0], 0) + 1
    current = period_ref(period, clock.site_today(tz, now), tz)
    starts = {current.date, *in_force, *reopened}
    first = first_data(conn, site_id)
    if first is not None:
        day = period_ref(period, first.astimezone(ZoneInfo(tz)).date(), tz).date
        while day < current.date:
            starts.add(day)
            day = period_ref(period, day, tz).end.date()
    out = []
    for d in sorted(starts, reverse=True):
        p = period_ref(period, d, tz)
        out.append(PeriodSummary(p, _state(p, d in in_force, now), in_force.get(d), reopened.get(d, 0)))
    return out


# --- reports for a period: closed figures, or provisional ones -----------------------------------


@dataclass
class ReportStatus:
    state: Annotated[Literal["closed", "provisional"], Field(description=(
        "closed: the figures stored when the period was closed, never recomputed; provisional: "
        "computed now, and will change with late data or a new factor"))]
    period_status: Status
    text: Annotated[str, Field(description="the status line, as the CSV/XLSX Summary shows it")]
    closing: ClosingRecord | None = None


@dataclass(kw_only=True)
class InventoryReport(reports.Inventory):
    status: ReportStatus
    restatement: Annotated[Restatement | None, Field(description=(
        "closed periods: the figures that differ when recomputed now; null when none do"))] = None


@dataclass(kw_only=True)
class EnergyBalanceReport(reports.EnergyBalance):
    status: ReportStatus
    restatement: Annotated[Restatement | None, Field(description=(
        "closed periods: the figures that differ when recomputed now; null when none do"))] = None


_BUILDERS: dict[str, tuple[Any, type, type, str]] = {
    "ghg-inventory": (reports.ghg_inventory, reports.Inventory, InventoryReport, "inventory"),
    "energy-balance": (reports.energy_balance, reports.EnergyBalance, EnergyBalanceReport, "energy_balance"),
}


def _status_text(p: PeriodRef, status: Status, record: ClosingRecord | None, tz: str,
                 restatement: Restatement | None) -> str:
    if record is None:
        if status == "running":
            return (f"Provisional: {p.kind} {p.label} is still running; the figures change as data "
                    "arrives.")
        return (f"Provisional: {p.kind} {p.label} has ended but is not closed; the figures change when "
                "late data or a factor arrives.")
    at = record.closed_at.astimezone(ZoneInfo(tz)).isoformat(timespec="minutes")
    text = f"Closed {at} by {record.closed_by}: the figures as closed, not recomputed."
    if restatement is not None:
        n = sum(f.differs for f in restatement.figures)
        text += f" Recomputed now, {n} figure(s) differ: see Restatement."
    if record.note:
        text += f" Note: {record.note}"
    return text


def period_report(conn: sa.Connection, site_id: str, kind: ReportKind, period: str, day: date | None,
                  now: datetime | None = None) -> InventoryReport | EnergyBalanceReport:
    """The report for a month or year: the closed figures with their restatement, or the
    figures computed now marked provisional."""
    now = now or clock.now()
    build, plain, wrapped, column = _BUILDERS[kind]
    tz = _site_tz(conn, site_id)
    p = period_ref(period, day or clock.site_today(tz, now), tz)
    stored = _in_force(conn, site_id, p)
    live = build(conn, site_id, p.kind, p.date, now)
    if stored is None:
        state = _state(p, False, now)
        status = ReportStatus("provisional", state, _status_text(p, state, None, tz, None))
        return wrapped(**_fields(live), status=status)
    closed_json = getattr(stored, column)
    live_json = to_json(live)
    # Only the inventory lists the green-power purchases; the balance has no market-based figure.
    purchases = (closed_json["green_power"]["purchases"], live_json["green_power"]["purchases"]) \
        if kind == "ghg-inventory" else (None, None)
    restatement: Restatement | None = restate(
        closed_json, live_json, closed_json["factors"], live_json["factors"], now, only_differing=True,
        closed_purchases=purchases[0], now_purchases=purchases[1])
    if restatement is not None and not restatement.differs:
        restatement = None
    status = ReportStatus("closed", "closed", _status_text(p, "closed", stored.record, tz, restatement),
                          stored.record)
    return wrapped(**_fields(from_json(plain, closed_json)), status=status, restatement=restatement)


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def report_tables(report: InventoryReport | EnergyBalanceReport) -> list[Table]:
    """The report's tables with the status line in Summary and, when figures differ, a
    Restatement table: the same rows in the CSV, the XLSX and the dashboard."""
    if isinstance(report, InventoryReport):
        tables = report_formats.inventory_tables(report)
    else:
        tables = report_formats.balance_tables(report)
    return with_status(tables, report.status, report.restatement)


def with_status(tables: list[Table], status: ReportStatus, restatement: Restatement | None) -> list[Table]:
    out = []
    for t in tables:
        if t.name == "Summary":
            rows = list(t.rows)
            at = next((i + 1 for i, r in enumerate(rows) if r and r[0] == "End (local, exclusive)"), 0)
            rows.insert(at, ["Status", status.text, "", None])
            t = Table(t.name, t.columns, rows)
        if t.name == "Notes" and restatement is not None:
            out.append(restatement_table(restatement))
        out.append(t)
    if restatement is not None and not any(t.name == "Restatement" for t in out):
        out.append(restatement_table(restatement))
    return out


def restatement_table(r: Restatement) -> Table:
    number = "0.000####"
    cols = [Column("figure"), Column("unit"), Column("closed", number), Column("now", number),
            Column("difference", number), Column("closed coverage", "0.0%"), Column("now coverage", "0.0%"),
            Column("reason")]
    rows: list[list[Any]] = [
        [f.figure, f.unit, f.closed, f.now, f.difference, f.closed_coverage, f.now_coverage,
         "; ".join(x.text for x in f.reasons)] for f in r.figures if f.differs]
    return Table("Restatement", cols, rows)
