"""The site energy model: read whole for the KPI engine, changed through the API or a site file.

Write functions run inside the caller's transaction and do not commit (routes commit, the CLI
uses ``engine.begin()``); ``import_site_file`` additionally holds its writes in a savepoint, so
a failure half-way leaves the site exactly as it was whatever the caller does next.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.pool import NullPool

from lingtan.core import queries, rowsync
from lingtan.core.factors import DEFAULT_SET, Factor, list_factors
from lingtan.core.site_file import (
    FactorOverride,
    MeterEntry,
    MeterPatch,
    SiteFields,
    SiteFile,
    SiteFileError,
    SiteHeader,
    SiteWrite,
    load_site_file,
    located,
)
from lingtan.core.site_schema import ActivityEntry, GreenPurchase, MeterParams, SiteParams
from lingtan.core.structure import physical_meters, save_structure, stored_structure
from lingtan.core.structure_schema import StructureError
from lingtan.kernel import clock
from lingtan.kernel.db import sqlalchemy_url
from lingtan.kernel.timegrid import ORIGIN
from lingtan.kernel.yamlmarks import Loc, dotted


class ModelError(ValueError):
    """A change that breaks the model; ``loc`` is the offending field's path in the request or file."""

    def __init__(self, loc: Loc, message: str, status: int = 422) -> None:
        super().__init__(f"{dotted(loc)}: {message}")
        self.loc = loc
        self.message = message
        self.status = status


class StoredPurchase(GreenPurchase):
    id: int


class StoredOverride(FactorOverride):
    id: int


@dataclass
class MeterInfo:
    id: str
    name: str
    role: str | None
    params: MeterParams


@dataclass
class SiteEnergyModel:
    """Everything the KPI engine needs about a site besides its readings."""

    site: queries.Site
    params: SiteParams
    meters: list[MeterInfo]
    purchases: list[StoredPurchase]
    overrides: list[Factor]
    factor_set: str = DEFAULT_SET

    def meters_with_role(self, role: str) -> list[MeterInfo]:
        return [m for m in self.meters if m.role == role]

    def overrides_for(self, year: int) -> dict[str, Factor]:
        """Overrides valid in ``year``, keyed ``"kind:subject"`` as ``factors.factor`` takes them.

        Periods of one kind and subject never overlap (checked on write); the factor interface is
        per year, so when a year is split between two overrides the later one (in force at the
        year's end) applies.
        """
        chosen: dict[str, Factor] = {}
        for f in self.overrides:
            key = f"{f.kind}:{f.subject}"
            current = chosen.get(key)
            if f.covers(year) and (current is None or _start(f.valid_from) > _start(current.valid_from)):
                chosen[key] = f
        return chosen


class MeterView(BaseModel):
    id: str
    name: str
    role: str | None
    params: MeterParams


class SiteView(BaseModel):
    """The whole model of a site, as the API shows it (ids included, for deleting)."""

    id: str
    name: str
    timezone: str
    grid_region: str
    factor_set: str
    params: SiteParams
    meters: list[MeterView]
    green_purchases: list[StoredPurchase]
    factor_overrides: list[StoredOverride]


class ImportResult(BaseModel):
    site_id: str
    site_created: bool
    meters: int
    meters_created: list[str]
    green_purchases: int
    green_purchases_added: int
    green_purchases_removed: int
    factor_overrides: int
    factor_overrides_added: int
    factor_overrides_removed: int
    activity_data: int = 0
    activity_data_added: int = 0
    activity_data_removed: int = 0
    structure_nodes: int | None = None  # None: the file has no structure, the stored one is kept
    structure_changed: bool = False
    programme_changed: bool | None = None  # None: the file has no programme, the stored one is kept
    savings_changed: bool | None = None  # None: no baselines or projects in the file, the stored kept

    def summary(self) -> str:
        created = ""
        if self.meters_created:
            created = f" ({len(self.meters_created)} created: {', '.join(self.meters_created)})"
        return "\n".join([
            f"site {self.site_id}: {'created' if self.site_created else 'updated'}",
            f"  {self.meters} meter(s){created}",
            f"  {self.green_purchases} green-power purchase(s) ({self.green_purchases_added} added,"
            f" {self.green_purchases_removed} removed)",
            f"  {self.factor_overrides} factor override(s) ({self.factor_overrides_added} added,"
            f" {self.factor_overrides_removed} removed)",
            f"  {self.activity_data} activity data entr{'y' if self.activity_data == 1 else 'ies'}"
            f" ({self.activity_data_added} added, {self.activity_data_removed} removed)",
            *([] if self.structure_nodes is None else [
                f"  structure: {self.structure_nodes} node(s), "
                f"{'changed' if self.structure_changed else 'unchanged'}"]),
            *([] if self.programme_changed is None else [
                f"  zero-carbon programme: {'changed' if self.programme_changed else 'unchanged'}"]),
            *([] if self.savings_changed is None else [
                f"  baselines and projects: {'changed' if self.savings_changed else 'unchanged'}"]),
        ])


# --- reads -----------------------------------------------------------------------------------

def _site_row(conn: sa.Connection, site_id: str, lock: bool = False) -> sa.Row[Any]:
    row = conn.execute(
        sa.text("SELECT id, name, timezone, grid_region, factor_set, params FROM sites WHERE id = :id"
                + (" FOR UPDATE" if lock else "")),
        {"id": site_id},
    ).first()
    if row is None:
        raise queries.NotFound(f"site {site_id!r} not found")
    return row


def _meters(conn: sa.Connection, site_id: str) -> list[MeterInfo]:
    rows = conn.execute(
        sa.text("SELECT id, name, role, params FROM meters WHERE site_id = :s ORDER BY id"), {"s": site_id})
    return [MeterInfo(r.id, r.name, r.role, MeterParams.model_validate(r.params)) for r in rows]


def list_purchases(conn: sa.Connection, site_id: str) -> list[StoredPurchase]:
    _site_row(conn, site_id)
    return _purchases(conn, site_id)


def _purchases(conn: sa.Connection, site_id: str) -> list[StoredPurchase]:
    rows = conn.execute(
        sa.text("SELECT id, kind, period_start, period_end, certificates, kwh, reference"
                " FROM green_purchases WHERE site_id = :s ORDER BY period_start, id"),
        {"s": site_id},
    )
    # The kwh column holds green kWh for both kinds (NOT NULL); a gec purchase is given in certificates.
    return [StoredPurchase.model_validate({**r._mapping, "kwh": None if r.kind == "gec" else r.kwh})
            for r in rows]


def list_overrides(conn: sa.Connection, site_id: str) -> list[StoredOverride]:
    _site_row(conn, site_id)
    return _overrides(conn, site_id)


def _overrides(conn: sa.Connection, site_id: str) -> list[StoredOverride]:
    rows = conn.execute(
        sa.text("SELECT id, kind, subject, value, unit, source, valid_from, valid_to FROM factor_overrides"
                " WHERE site_id = :s ORDER BY kind, subject, valid_from NULLS FIRST, id"),
        {"s": site_id},
    )
    return [StoredOverride.model_validate(dict(r._mapping)) for r in rows]


def as_factor(site_id: str, o: FactorOverride) -> Factor:
    region = o.subject if o.kind.startswith("grid") else None
    return Factor(o.value, o.unit, None, region, o.source, key=f"override:{site_id}:{o.kind}:{o.subject}",
                  kind=o.kind, subject=o.subject, valid_from=o.valid_from, valid_to=o.valid_to)


def load_site_model(conn: sa.Connection, site_id: str) -> SiteEnergyModel:
    """The site's energy model; raises ``queries.NotFound`` for an unknown site."""
    row = _site_row(conn, site_id)
    return SiteEnergyModel(
        site=queries.Site(row.id, row.name, row.timezone, row.grid_region),
        params=SiteParams.model_validate(row.params),
        meters=_meters(conn, site_id),
        purchases=_purchases(conn, site_id),  # the site row above already proved the site exists
        overrides=[as_factor(site_id, o) for o in _overrides(conn, site_id)],
        factor_set=row.factor_set,
    )


def site_view(conn: sa.Connection, site_id: str) -> SiteView:
    row = _site_row(conn, site_id)
    return SiteView(
        id=row.id, name=row.name, timezone=row.timezone, grid_region=row.grid_region,
        factor_set=row.factor_set, params=SiteParams.model_validate(row.params),
        meters=[MeterView(id=m.id, name=m.name, role=m.role, params=m.params)
                for m in _meters(conn, site_id)],
        green_purchases=list_purchases(conn, site_id),
        factor_overrides=list_overrides(conn, site_id),
    )


def export_site_file(conn: sa.Connection, site_id: str) -> SiteFile:
    """The site as a site file, so ``lingtan site show`` output can be imported again.

    Meters without a role are left out unless the structure counts them.
    """
    view = site_view(conn, site_id)
    structure = stored_structure(conn, site_id)
    counted = set(physical_meters(structure)) if structure is not None else set()
    return SiteFile(
        site=SiteHeader.model_validate(view.model_dump(include={"id", "name", "timezone", "grid_region",
                                                                "factor_set"})),
        energy=view.params,
        meters=[MeterEntry.model_validate(m.model_dump()) for m in view.meters
                if m.role is not None or m.id in counted],
        green_power=[GreenPurchase.model_validate(p.model_dump(exclude={"id"}))
                     for p in view.green_purchases],
        factor_overrides=[FactorOverride.model_validate(o.model_dump(exclude={"id"}))
                          for o in view.factor_overrides],
        activity_data=_activity_entries(conn, site_id),
        structure=structure,
        **_programme_sections(conn, site_id),
    )


def _programme_sections(conn: sa.Connection, site_id: str) -> dict[str, Any]:
    from lingtan.core.programme import stored_programme  # it computes with this module's model
    from lingtan.core.savings_service import stored_savings

    out: dict[str, Any] = {}
    z = stored_programme(conn, site_id)
    if z is not None:
        out |= {"programme": z.programme, "targets": z.targets, "offsets": z.offsets,
                "evaluations": z.evaluations}
    s = stored_savings(conn, site_id)
    if s is not None:
        out |= {"energy_baselines": s.energy_baselines, "projects": s.projects}
    return out


def _activity_entries(conn: sa.Connection, site_id: str) -> list[ActivityEntry]:
    from lingtan.core import activity  # activity needs the KPI figures, which need this module

    stored, _ = activity.list_entries(conn, site_id)
    return [ActivityEntry.model_validate(e.model_dump(include=set(activity.CONTENT), exclude_none=True))
            for e in stored]


# --- validation beyond one field -------------------------------------------------------------

# Meter parameters that only make sense for some roles; the rest (counter_wrap, rated_power_kw)
# apply to any meter. A boiler meter that also meters its steam carries the steam conditions.
_PARAM_ROLES: dict[str, tuple[str, ...]] = {
    "compressor": ("compressor",),
    "fuel": ("boiler_fuel",),
    "heat_carrier": ("purchased_heat",),
    "boiler_output": ("boiler_output", "boiler_fuel"),
}


def check_meter_params(role: str | None, params: MeterParams, loc: Loc, role_loc: Loc | None = None) -> None:
    """Params that do not fit the role are an error at ``loc`` + the param (or at ``role_loc``)."""
    for name, roles in _PARAM_ROLES.items():
        if getattr(params, name) is not None and role not in roles:
            wanted = " or ".join(roles)
            if role_loc is not None:
                raise ModelError(role_loc, f"the meter's params give {name}, which belongs to role {wanted},"
                                           f" not {role or 'no role'}; change params as well")
            raise ModelError((*loc, name), f"applies to meters with role {wanted}; this meter's role is "
                                           f"{role or 'not set'}")


def check_override(factor_set: str, o: FactorOverride, loc: Loc) -> None:
    """The kind and subject must exist in the site's factor set, in the same unit."""
    units = {f.subject: f.unit for f in list_factors(factor_set, o.kind)}
    if o.subject not in units:
        raise ModelError((*loc, "subject"), f"{factor_set} has no {o.kind} factor for {o.subject!r} "
                                            f"(known: {', '.join(sorted(units))})")
    if o.unit != units[o.subject]:
        raise ModelError((*loc, "unit"), f"must be {units[o.subject]}, the unit of the {o.kind} factor for "
                                         f"{o.subject} it overrides (got {o.unit!r})")


def check_heat_recovery(conn: sa.Connection, site_id: str, params: SiteParams, loc: Loc) -> None:
    """Every compressor a heat recovery is declared on must be a compressor meter of the site."""
    rows = conn.execute(sa.text("SELECT id, role FROM meters WHERE site_id = :s"), {"s": site_id}).all()
    roles = {r.id: r.role for r in rows}
    for i, meter in enumerate(params.heat_recovery.compressors):
        if roles.get(meter, "") != "compressor":
            what = ("is not a meter of this site" if meter not in roles
                    else f"has role {roles[meter] or 'none'}")
            raise ModelError((*loc, "heat_recovery", "compressors", i),
                             f"{meter!r} {what}; heat recovery is declared on compressor meters")


def _start(d: date | None) -> date:
    return d or date.min


def _end(d: date | None) -> date:
    return d or date.max


def check_no_overlap(overrides: list[tuple[Loc, FactorOverride]]) -> None:
    """Periods of one kind and subject must not overlap, so one override is in force at a time.

    The error is at the later item of a clashing pair and names the earlier one's period.
    """
    for j, (loc, o) in enumerate(overrides):
        for _, other in overrides[:j]:
            same = (other.kind, other.subject) == (o.kind, o.subject)
            apart = _end(other.valid_to) < _start(o.valid_from) or _end(o.valid_to) < _start(other.valid_from)
            if same and not apart:
                raise ModelError((*loc, "valid_from"), f"overlaps the {o.kind} override for {o.subject} "
                                                       f"from {other.valid_from or 'the start'} to "
                                                       f"{other.valid_to or 'no end'}")


# --- writes ----------------------------------------------------------------------------------

def _dump(model: BaseModel) -> str:
    # Only what was given is stored: an omitted parameter keeps following the documented default.
    return model.model_dump_json(exclude_unset=True)


def _upsert_site(conn: sa.Connection, site_id: str, fields: SiteFields, params: SiteParams) -> bool:
    """Create or replace the site's own row; True if it was created."""
    return bool(conn.execute(
        sa.text(
            "INSERT INTO sites (id, name, timezone, grid_region, factor_set, params)"
            " VALUES (:id, :name, :tz, :region, :set, CAST(:params AS jsonb))"
            " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, timezone = EXCLUDED.timezone,"
            " grid_region = EXCLUDED.grid_region, factor_set = EXCLUDED.factor_set, params = EXCLUDED.params"
            " RETURNING (xmax = 0)"  # xmax is 0 only on a freshly inserted row
        ),
        {"id": site_id, "name": fields.name, "tz": fields.timezone, "region": fields.grid_region,
         "set": fields.factor_set, "params": _dump(params)},
    ).scalar_one())


def put_site(conn: sa.Connection, site_id: str, body: SiteWrite) -> bool:
    """Create or replace a site (meters, purchases and overrides are kept); True if created."""
    check_heat_recovery(conn, site_id, body.params, ("params",))
    return _upsert_site(conn, site_id, body, body.params)


def _refresh_exchanges(conn: sa.Connection, meter_id: str, old: MeterParams | None, new: MeterParams) -> None:
    """An exchange recorded, changed or removed after the readings arrived changes the energy of
    the pair around it: mark the minute of the reading after each such swap, so the refresher
    re-materialises it (and the rollups and series above it)."""
    before = {(x.quantity, x.time, x.old_final, x.new_initial) for x in (old.exchanges if old else [])}
    after = {(x.quantity, x.time, x.old_final, x.new_initial) for x in new.exchanges}
    for quantity, t, _, _ in before ^ after:
        conn.execute(sa.text(
            "INSERT INTO rollup_dirty (meter_id, quantity, bucket)"
            " SELECT meter_id, quantity, date_bin('1 minute', time, :origin) FROM readings"
            " WHERE meter_id = :m AND quantity = :q AND time > :t ORDER BY time LIMIT 1"
            " ON CONFLICT DO NOTHING"), {"m": meter_id, "q": quantity, "t": t, "origin": ORIGIN})


def update_meter(conn: sa.Connection, meter_id: str, patch: MeterPatch) -> MeterView:
    row = conn.execute(
        sa.text("SELECT name, role, params FROM meters WHERE id = :id FOR UPDATE"), {"id": meter_id}).first()
    if row is None:
        raise queries.NotFound(f"meter {meter_id!r} not found")
    given = patch.model_fields_set
    role = patch.role if "role" in given else row.role
    name = patch.name if patch.name is not None else row.name
    params = patch.params if patch.params is not None else MeterParams.model_validate(row.params)
    check_meter_params(role, params, ("params",), None if patch.params is not None else ("role",))
    _refresh_exchanges(conn, meter_id, MeterParams.model_validate(row.params), params)
    conn.execute(
        sa.text("UPDATE meters SET role = :role, name = :name, params = CAST(:params AS jsonb)"
                " WHERE id = :id"),
        {"id": meter_id, "role": role, "name": name, "params": _dump(params)},
    )
    return MeterView(id=meter_id, name=name, role=role, params=params)


def add_purchase(conn: sa.Connection, site_id: str, p: GreenPurchase) -> StoredPurchase:
    _site_row(conn, site_id)
    new_id = _insert_purchase(conn, site_id, p)
    return StoredPurchase(id=new_id, **p.model_dump())


def _insert_purchase(conn: sa.Connection, site_id: str, p: GreenPurchase) -> int:
    return int(conn.execute(
        sa.text("INSERT INTO green_purchases (site_id, kind, period_start, period_end, certificates, kwh,"
                " reference) VALUES (:site, :kind, :start, :end, :certs, :kwh, :ref) RETURNING id"),
        # kwh is green kWh for both kinds (1 GEC = 1000 kWh), so SQL can sum purchases directly.
        {"site": site_id, "kind": p.kind, "start": p.period_start, "end": p.period_end,
         "certs": p.certificates, "kwh": p.green_kwh, "ref": p.reference},
    ).scalar_one())


def delete_purchase(conn: sa.Connection, site_id: str, purchase_id: int) -> None:
    _site_row(conn, site_id)
    deleted = conn.execute(sa.text("DELETE FROM green_purchases WHERE id = :id AND site_id = :s"),
                           {"id": purchase_id, "s": site_id}).rowcount
    if not deleted:
        raise queries.NotFound(f"green-power purchase {purchase_id} not found for site {site_id!r}")


def add_override(conn: sa.Connection, site_id: str, o: FactorOverride) -> StoredOverride:
    site = _site_row(conn, site_id, lock=True)  # serialises the overlap check per site
    check_override(site.factor_set, o, ())
    check_no_overlap([*(((), e) for e in list_overrides(conn, site_id)), ((), o)])
    new_id = _insert_override(conn, site_id, o)
    return StoredOverride(id=new_id, **o.model_dump())


def _insert_override(conn: sa.Connection, site_id: str, o: FactorOverride) -> int:
    return int(conn.execute(
        sa.text("INSERT INTO factor_overrides (site_id, kind, subject, value, unit, source, valid_from,"
                " valid_to) VALUES (:site, :kind, :subject, :value, :unit, :source, :vf, :vt) RETURNING id"),
        {"site": site_id, "kind": o.kind, "subject": o.subject, "value": o.value, "unit": o.unit,
         "source": o.source, "vf": o.valid_from, "vt": o.valid_to},
    ).scalar_one())


def delete_override(conn: sa.Connection, site_id: str, override_id: int) -> None:
    _site_row(conn, site_id)
    deleted = conn.execute(sa.text("DELETE FROM factor_overrides WHERE id = :id AND site_id = :s"),
                           {"id": override_id, "s": site_id}).rowcount
    if not deleted:
        raise queries.NotFound(f"factor override {override_id} not found for site {site_id!r}")


# --- the site file ---------------------------------------------------------------------------

def _content(model: BaseModel) -> Hashable:
    return tuple(sorted(model.model_dump(exclude={"id"}).items()))


def _sync(stored: list[StoredPurchase] | list[StoredOverride], wanted: list[Any]
          ) -> tuple[list[int], list[Any]]:
    """(ids to delete, items to insert) so the stored rows equal ``wanted``; unchanged rows keep their ids."""
    return rowsync.diff(stored, wanted, _content)


def import_site_file(conn: sa.Connection, data: SiteFile | Mapping[str, Any], entered_by: str = "site file",
                     now: datetime | None = None) -> ImportResult:
    """Apply a whole site file, all or nothing; importing the same file again changes nothing.

    The site row and the listed meters take the file's values (missing meters are created, so a
    site can be set up before its gateway first runs; meters not listed are left alone). The
    site's green-power purchases, factor overrides and activity data become exactly the file's
    lists; activity entries the file adds are recorded as entered by ``entered_by`` at ``now``.
    """
    from lingtan.core import activity

    sf = data if isinstance(data, SiteFile) else SiteFile.model_validate(data)
    site_id = sf.site.id
    for i, m in enumerate(sf.meters):
        check_meter_params(m.role, m.params, ("meters", i, "params"))
    located_overrides = [(("factor_overrides", j), o) for j, o in enumerate(sf.factor_overrides)]
    for loc, o in located_overrides:
        check_override(sf.site.factor_set, o, loc)
    check_no_overlap(located_overrides)
    twice = activity.duplicate_in(sf.activity_data)
    if twice is not None:
        raise ModelError(("activity_data", twice[1]), f"the same entry as activity_data[{twice[0]}]; "
                                                      "listed twice it would be counted twice")

    with conn.begin_nested():
        created = _upsert_site(conn, site_id, sf.site, sf.energy)
        meters_created = [m.id for i, m in enumerate(sf.meters) if _upsert_meter(conn, site_id, i, m)]
        check_heat_recovery(conn, site_id, sf.energy, ("energy",))
        gone, new = _sync(list_purchases(conn, site_id), sf.green_power)
        _delete(conn, "green_purchases", gone)
        for p in new:
            _insert_purchase(conn, site_id, p)
        gone_o, new_o = _sync(list_overrides(conn, site_id), sf.factor_overrides)
        _delete(conn, "factor_overrides", gone_o)  # before inserting: (kind, subject, valid_from) is unique
        for o in new_o:
            _insert_override(conn, site_id, o)
        added_a, removed_a = activity.sync(conn, site_id, sf.activity_data, entered_by, now)
        changed = False
        if sf.structure is not None:
            try:
                changed = save_structure(conn, site_id, sf.structure, entered_by, now or clock.now())
            except StructureError as exc:
                raise ModelError(("structure", *exc.loc), exc.message) from None
        programme_changed = None
        if sf.zero_carbon is not None:
            from lingtan.core.programme import save_programme  # it computes with this module's model
            from lingtan.core.programme_schema import ProgrammeError

            try:
                programme_changed = save_programme(conn, site_id, sf.zero_carbon, entered_by,
                                                   now or clock.now())
            except ProgrammeError as exc:
                raise ModelError(exc.loc, exc.message) from None
        savings_changed = None
        if sf.savings is not None:
            from lingtan.core.savings_schema import SavingsError
            from lingtan.core.savings_service import save_savings  # it computes with this module's model

            try:
                savings_changed = save_savings(conn, site_id, sf.savings, entered_by, now or clock.now())
            except SavingsError as exc:
                raise ModelError(exc.loc, exc.message) from None
    return ImportResult(
        site_id=site_id, site_created=created, meters=len(sf.meters), meters_created=meters_created,
        green_purchases=len(sf.green_power), green_purchases_added=len(new),
        green_purchases_removed=len(gone),
        factor_overrides=len(sf.factor_overrides), factor_overrides_added=len(new_o),
        factor_overrides_removed=len(gone_o),
        activity_data=len(sf.activity_data), activity_data_added=added_a, activity_data_removed=removed_a,
        structure_nodes=None if sf.structure is None else len(sf.structure.nodes), structure_changed=changed,
        programme_changed=programme_changed, savings_changed=savings_changed,
    )


def _upsert_meter(conn: sa.Connection, site_id: str, index: int, m: MeterEntry) -> bool:
    """Set the meter's role, name and params; True if it had to be created."""
    owner = conn.execute(
        sa.text("SELECT site_id, params FROM meters WHERE id = :id FOR UPDATE"), {"id": m.id}).first()
    if owner is not None and owner.site_id != site_id:
        raise ModelError(("meters", index, "id"), f"meter {m.id!r} belongs to site {owner.site_id!r}; "
                                                  "a meter id is unique across sites", status=409)
    _refresh_exchanges(conn, m.id, MeterParams.model_validate(owner.params) if owner is not None else None,
                       m.params)
    if owner is None:
        conn.execute(
            sa.text("INSERT INTO meters (id, site_id, name, role, params)"
                    " VALUES (:id, :site, :name, :role, CAST(:params AS jsonb))"),
            {"id": m.id, "site": site_id, "name": m.name or m.id, "role": m.role, "params": _dump(m.params)},
        )
        return True
    conn.execute(
        sa.text("UPDATE meters SET role = :role, name = coalesce(:name, name),"
                " params = CAST(:params AS jsonb) WHERE id = :id"),
        {"id": m.id, "name": m.name, "role": m.role, "params": _dump(m.params)},
    )
    return False


def _delete(conn: sa.Connection, table: str, ids: list[int]) -> None:
    if ids:
        conn.execute(sa.text(f"DELETE FROM {table} WHERE id = ANY(:ids)"), {"ids": ids})


def apply_site_file(database_url: str, path: Path, entered_by: str | None = None) -> ImportResult:
    """Read, validate and import a site file in one transaction; errors name the file's line."""
    sf, lines = load_site_file(path)
    entered_by = entered_by or f"site file {path.name} ({_os_user()})"
    # A one-off connection: the CLI and the demo should leave no pooled connection behind.
    engine = sa.create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return import_site_file(conn, sf, entered_by)
    except ModelError as exc:
        raise SiteFileError(located(str(path), lines, exc.loc, exc.message)) from None
    finally:
        engine.dispose()


def _os_user() -> str:
    """Who ran the import, as the operating system knows them (``lingtan site import``)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry, e.g. in a bare container
        return "unknown user"
