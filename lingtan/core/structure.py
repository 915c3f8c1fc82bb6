"""A site's metering structure: stored, checked against the site's meters, and resolved into what
each node counts (docs/domain.md, "Metering structure").

A node's energy of a carrier is what its own meters count (signed, virtual meters expanded); a
node without meters of that carrier counts what its children count. Where a node has its own
meters and children too, the difference is energy no sub-meter accounts for (unmetered).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lingtan.core import documents, queries
from lingtan.core.structure_schema import (
    Node,
    Structure,
    StructureError,
    check_structure,
    expand_virtual,
)

Key = tuple[str, str]  # (meter id, quantity)
Form = dict[Key, float]  # a signed combination of physical counters


@dataclass
class ResolvedNode:
    node: Node
    depth: int
    end_use: str
    children: list[str]
    own: dict[str, Form]  # carrier → the node's own meters, virtual ones expanded
    parent: str | None = None


@dataclass
class Resolved:
    structure: Structure
    nodes: dict[str, ResolvedNode]  # in tree order (parents before children, siblings as listed)

    def forms(self, carrier: str) -> dict[str, Form]:
        """Node → the counters its energy of ``carrier`` is summed from (own meters, or its
        children's when it has none)."""
        out: dict[str, Form] = {}
        for nid in reversed(self.nodes):
            r = self.nodes[nid]
            if carrier in r.own:
                out[nid] = r.own[carrier]
            else:
                form: Form = {}
                for c in r.children:
                    for k, v in out.get(c, {}).items():
                        form[k] = form.get(k, 0.0) + v
                if form:
                    out[nid] = form
        return out


def resolve(s: Structure) -> Resolved:
    virtual = expand_virtual(s)
    kids = s.children()
    nodes: dict[str, ResolvedNode] = {}
    root = kids.get(None, [None])[0]

    def visit(n: Node, depth: int, end_use: str | None) -> None:
        use = n.end_use or end_use or "unassigned"
        own: dict[str, Form] = {}
        for m in n.meters:
            form = own.setdefault(m.carrier, {})
            for meter, coef in (virtual.get(m.meter) or {m.meter: 1.0}).items():
                key = (meter, m.quantity)
                form[key] = form.get(key, 0.0) + m.sign * coef
        nodes[n.id] = ResolvedNode(n, depth, use, [c.id for c in kids.get(n.id, [])], own, n.parent)
        for c in kids.get(n.id, []):
            visit(c, depth + 1, use)

    if root is not None:
        visit(root, 0, None)
    return Resolved(s, nodes)


def physical_meters(s: Structure) -> dict[str, tuple[str | int, ...]]:
    """Every meter id the structure refers to (not virtual), with where it is first named."""
    virtual = {v.id for v in s.virtual_meters}
    out: dict[str, tuple[str | int, ...]] = {}
    for j, v in enumerate(s.virtual_meters):
        for m in v.terms:
            if m not in virtual:
                out.setdefault(m, ("virtual_meters", j, "formula"))
    for i, n in enumerate(s.nodes):
        for k, m in enumerate(n.meters):
            if m.meter not in virtual:
                out.setdefault(m.meter, ("nodes", i, "meters", k, "meter"))
        if n.production_meter is not None:
            out.setdefault(n.production_meter, ("nodes", i, "production_meter"))
    return out


def check_meters(s: Structure, site_meters: set[str], other_sites: dict[str, str] | None = None) -> None:
    """Every meter named must be one of the site's; raises ``StructureError`` naming the first that is not."""
    virtual = {v.id for v in s.virtual_meters}
    for i, n in enumerate(s.nodes):
        if n.production_meter is not None and n.production_meter in virtual:
            raise StructureError(("nodes", i, "production_meter"),
                                 f"node {n.id!r}: a production counter is a real meter, not a virtual one")
    for meter, loc in physical_meters(s).items():
        if meter in virtual or meter in site_meters:
            continue
        elsewhere = (other_sites or {}).get(meter)
        what = f"belongs to site {elsewhere!r}" if elsewhere else "is not a meter of this site"
        raise StructureError(loc, f"{_where(s, loc)}unknown meter {meter!r}: it {what}"
                                  " (list it under meters:, or let its gateway report it first)")
    for j, v in enumerate(s.virtual_meters):
        if v.id in site_meters:
            raise StructureError(("virtual_meters", j, "id"),
                                 f"virtual meter {v.id!r} has the id of a real meter of the site")


def _where(s: Structure, loc: tuple[str | int, ...]) -> str:
    if loc[0] == "nodes":
        return f"node {s.nodes[int(loc[1])].id!r}: "
    return f"virtual meter {s.virtual_meters[int(loc[1])].id!r}: "


# --- storage ---------------------------------------------------------------------------------

def load_structure(conn: sa.Connection, site_id: str) -> Structure:
    """The site's structure (empty when none is set); raises ``queries.NotFound`` for an unknown site."""
    queries.get_site(conn, site_id)
    return stored_structure(conn, site_id) or Structure()


def stored_structure(conn: sa.Connection, site_id: str) -> Structure | None:
    """The site's structure as stored, None when it has none."""
    doc = documents.read(conn, "site_structures", site_id)
    return Structure.model_validate(doc) if doc is not None else None


def save_structure(conn: sa.Connection, site_id: str, s: Structure, by: str, now: datetime) -> bool:
    """Check ``s`` against the site's meters and store it whole; True if it changed. Runs in the
    caller's transaction; a refused structure writes nothing."""
    queries.get_site(conn, site_id)
    check_structure(s)
    rows = conn.execute(sa.text("SELECT id, site_id FROM meters WHERE id = ANY(:ids)"),
                        {"ids": list(physical_meters(s))}).all()
    own = {r.id for r in rows if r.site_id == site_id}
    check_meters(s, own, {r.id: r.site_id for r in rows if r.site_id != site_id})
    doc = s.model_dump_json(exclude_defaults=True)
    return documents.store(conn, "site_structures", site_id, doc, by, now)
