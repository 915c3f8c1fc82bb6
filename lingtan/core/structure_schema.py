"""The metering structure of a site: a tree of nodes with their meters per carrier, virtual meters,
end uses, departments and the internal carbon price (docs/domain.md, "Metering structure").

One pydantic schema for the site file's ``structure:`` section and ``PUT /sites/{id}/structure``.
What can be checked without the database is checked here (the tree, formulas, a meter counted
twice with one sign); whether a meter exists is checked against the site when the structure is
stored (``lingtan.core.structure``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lingtan.core.formula import FormulaError, Linear, parse
from lingtan.core.located import LocatedError

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Carrier = Literal["electricity", "gas", "steam", "heat", "water"]
CARRIERS: tuple[str, ...] = Carrier.__args__  # type: ignore[attr-defined]
# The counter each carrier is metered by, and its unit (lingtan.kernel.quantities).
QUANTITY = {"electricity": "active_energy_import", "gas": "gas_volume", "steam": "steam_mass",
            "heat": "heat_energy", "water": "water_volume"}
UNIT = {"electricity": "kWh", "gas": "m3", "steam": "t", "heat": "GJ", "water": "m3"}
# End-use categories (分项) after GB/T 2589's and the public-building sub-metering practice: the
# site may add its own (``end_uses``).
END_USES: tuple[str, ...] = ("production_process", "compressed_air", "steam_and_heat", "hvac", "lighting",
                             "offices", "auxiliary")


class StructureError(LocatedError):
    """A structure problem at ``loc`` (a path inside the structure, e.g. ``("nodes", 3, "meters", 1)``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeMeter(_Strict):
    """A meter (or virtual meter) counted into a node, with its sign."""

    meter: Annotated[Id, Field(description="a meter of the site or a virtual meter", examples=["feeder-7"])]
    carrier: Carrier = "electricity"
    sign: Annotated[Literal[1, -1], Field(description=(
        "-1: subtracted, e.g. a sub-feeder that belongs to another node"))] = 1
    direction: Annotated[Literal["import", "export"], Field(description=(
        "electricity: the import register (consumption), or the export register (a PV inverter's "
        "generation, or what a grid incomer sent back)"))] = "import"

    @model_validator(mode="after")
    def _register(self) -> NodeMeter:
        if self.direction == "export" and self.carrier != "electricity":
            raise ValueError("direction: only electricity meters have an export register")
        return self

    @property
    def quantity(self) -> str:
        return "active_energy_export" if self.direction == "export" else QUANTITY[self.carrier]


class NodeTarget(_Strict):
    """A department's own target for a year (spread over its months by days) or one month."""

    year: Annotated[int, Field(ge=2000, le=2100)]
    month: Annotated[int | None, Field(ge=1, le=12, description="unset: a target for the whole year")] = None
    energy_tce: Annotated[float | None, Field(ge=0)] = None
    carbon_tco2e: Annotated[float | None, Field(ge=0, description="market basis")] = None
    electricity_kwh: Annotated[float | None, Field(ge=0)] = None

    @model_validator(mode="after")
    def _something(self) -> NodeTarget:
        if self.energy_tce is None and self.carbon_tco2e is None and self.electricity_kwh is None:
            raise ValueError("give at least one of energy_tce, carbon_tco2e, electricity_kwh")
        return self


class Node(_Strict):
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    parent: Annotated[Id | None, Field(description="unset only for the root (the site)")] = None
    kind: Annotated[str, Field(min_length=1, max_length=40, examples=["workshop"], description=(
        "the level's name in this site (site, area, department, workshop, line, equipment …)"))]
    end_use: Annotated[str | None, Field(description=(
        f"{', '.join(END_USES)} or one of the structure's end_uses; unset: the parent's"))] = None
    department: Annotated[bool, Field(description="ranked in the monthly department report")] = False
    meters: list[NodeMeter] = []
    production_meter: Annotated[Id | None, Field(description=(
        "a meter counting production_count: energy and carbon per unit of product"))] = None
    floor_area_m2: Annotated[float | None, Field(gt=0)] = None
    headcount: Annotated[int | None, Field(gt=0)] = None
    targets: list[NodeTarget] = []

    @field_validator("targets")
    @classmethod
    def _one_target_per_period(cls, value: list[NodeTarget]) -> list[NodeTarget]:
        seen = set()
        for t in value:
            if (t.year, t.month) in seen:
                raise ValueError(f"two targets for {t.year}{f'-{t.month:02d}' if t.month else ''}")
            seen.add((t.year, t.month))
        return value


class VirtualMeter(_Strict):
    id: Id
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    formula: Annotated[str, Field(min_length=1, max_length=2000, examples=[
        "feeder-7 - feeder-7a + 0.5 * shared-transformer"], description=(
        "meters (or other virtual meters) added, subtracted and multiplied by numbers; spaces "
        "around a minus between two ids"))]

    @field_validator("formula")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            parse(value)
        except FormulaError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def terms(self) -> Linear:
        return parse(self.formula)


class CarbonPrice(_Strict):
    year: Annotated[int, Field(ge=2000, le=2100)]
    cny_per_tco2e: Annotated[float, Field(ge=0, examples=[80])]
    source: Annotated[str, Field(max_length=300, examples=["board decision 2026-03"])] = ""


class Structure(_Strict):
    nodes: Annotated[list[Node], Field(description="parents before or after children, any order")] = []
    virtual_meters: list[VirtualMeter] = []
    end_uses: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]], Field(description=(
        "end-use categories of the site's own, beside the standard ones"))] = []
    unmetered_threshold_pct: Annotated[float, Field(ge=0, le=100, description=(
        "unmetered energy (parent − Σ children) above this share of the parent is flagged"))] = 5.0
    green_allocation: Annotated[Literal["proportional", "none"], Field(description=(
        "proportional: the site's green power (own PV, trades, certificates) goes to every node in "
        "proportion to its electricity; none: nodes are shown on the location basis for market too"))
    ] = "proportional"
    carbon_price: Annotated[list[CarbonPrice], Field(description="internal carbon price by year")] = []

    def children(self) -> dict[str | None, list[Node]]:
        out: dict[str | None, list[Node]] = {}
        for n in self.nodes:
            out.setdefault(n.parent, []).append(n)
        return out

    def price_for(self, year: int) -> CarbonPrice | None:
        return next((p for p in self.carbon_price if p.year == year), None)


def check_structure(s: Structure) -> None:
    """Everything that can be wrong without looking at the site's meters; raises ``StructureError``."""
    ids: dict[str, int] = {}
    for i, n in enumerate(s.nodes):
        if n.id in ids:
            raise StructureError(("nodes", i, "id"),
                                 f"node {n.id!r} is listed twice (also nodes[{ids[n.id]}])")
        ids[n.id] = i
    if s.nodes:
        roots = [i for i, n in enumerate(s.nodes) if n.parent is None]
        if not roots:
            raise StructureError(("nodes",), "no root: exactly one node (the site) has no parent")
        if len(roots) > 1:
            raise StructureError(("nodes", roots[1], "parent"),
                                 f"a second root ({s.nodes[roots[1]].id!r} beside {s.nodes[roots[0]].id!r}): "
                                 "every node but the site has a parent")
    for i, n in enumerate(s.nodes):
        if n.parent is not None and n.parent not in ids:
            raise StructureError(("nodes", i, "parent"), f"node {n.id!r}: parent {n.parent!r} is not a node")
    for i, n in enumerate(s.nodes):  # walking up from each node must reach the root
        seen, at = [n.id], n.parent
        while at is not None:
            if at in seen:
                cycle = " → ".join([*seen[seen.index(at):], at])
                raise StructureError(("nodes", i, "parent"), f"node {n.id!r} is in a cycle: {cycle}")
            seen.append(at)
            at = s.nodes[ids[at]].parent
    uses = set(END_USES) | set(s.end_uses)
    for i, n in enumerate(s.nodes):
        if n.end_use is not None and n.end_use not in uses:
            raise StructureError(("nodes", i, "end_use"),
                                 f"node {n.id!r}: unknown end use {n.end_use!r} "
                                 f"(known: {', '.join(sorted(uses))}; add your own under structure.end_uses)")
    years = [p.year for p in s.carbon_price]
    for j, y in enumerate(years):
        if y in years[:j]:
            raise StructureError(("carbon_price", j, "year"), f"two carbon prices for {y}")
    virtual = {v.id: j for j, v in enumerate(s.virtual_meters)}
    for j, v in enumerate(s.virtual_meters):
        if list(virtual).count(v.id) > 1 or virtual[v.id] != j:
            raise StructureError(("virtual_meters", j, "id"), f"virtual meter {v.id!r} is listed twice")
    virtual_terms = expand_virtual(s)  # a virtual meter defined through itself is refused
    # A meter's uses with one sign add up to at most the whole meter: 0.5 + 0.5 of a shared
    # transformer is the transformer once; the same feeder in two nodes counts its energy twice.
    used: dict[tuple[str, str, int], tuple[float, int, int]] = {}
    for i, n in enumerate(s.nodes):
        for k, m in enumerate(n.meters):
            for meter, coef in (virtual_terms.get(m.meter) or {m.meter: 1.0}).items():
                sign = 1 if m.sign * coef > 0 else -1
                key = (meter, m.quantity, sign)
                total, a, b = used.get(key, (0.0, i, k))
                total += abs(coef)
                if total > 1.0 + 1e-9:
                    via = f" (through virtual meter {m.meter!r})" if m.meter in virtual_terms else ""
                    raise StructureError(("nodes", i, "meters", k, "meter"),
                                         f"node {n.id!r}: meter {meter!r}{via} is already counted with sign "
                                         f"{sign:+d} in node {s.nodes[a].id!r} (nodes[{a}].meters[{b}]): its "
                                         "energy would be counted twice")
                used[key] = (total, a, b)


def expand_virtual(s: Structure) -> dict[str, Linear]:
    """Each virtual meter as a combination of physical meters (virtual ones expanded)."""
    defs = {v.id: v.terms for v in s.virtual_meters}
    index = {v.id: j for j, v in enumerate(s.virtual_meters)}
    done: dict[str, Linear] = {}

    def expand(vid: str, path: list[str]) -> Linear:
        if vid in done:
            return done[vid]
        if vid in path:
            cycle = " → ".join([*path[path.index(vid):], vid])
            raise StructureError(("virtual_meters", index[path[-1]], "formula"),
                                 f"virtual meter {path[-1]!r} is defined through itself: {cycle}")
        out: Linear = {}
        for m, c in defs[vid].items():
            for leaf, k in (expand(m, [*path, vid]) if m in defs else {m: 1.0}).items():
                out[leaf] = out.get(leaf, 0.0) + c * k
        done[vid] = {m: c for m, c in out.items() if abs(c) > 1e-12}
        return done[vid]

    for vid in defs:
        expand(vid, [])
    return done
