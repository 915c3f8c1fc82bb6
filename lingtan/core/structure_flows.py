"""Where a site's energy goes, as flows for a Sankey diagram: sources → the tree's levels → end uses,
with unmetered energy as a flow of its own (docs/domain.md, "Metering structure").

Built from ``structure_kpis`` figures only, so the diagram and the tables show the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lingtan.core.structure_kpis import NodeKpis, StructureKpis

UNMETERED = "unmetered"


@dataclass(frozen=True)
class Flow:
    source: str  # a label key: "source:grid", "node:<id>", "unmetered:<id>", "end_use:<name>"
    target: str
    value: float


Measure = Callable[[NodeKpis], float | None]


def measure(basis: str, carrier: str = "electricity") -> Measure:
    """What a flow carries: one carrier's energy in its unit, or tce, or tCO2e (market, else location)."""
    if basis == "tce":
        return lambda n: n.tce.value
    if basis == "carbon":
        return lambda n: n.tco2e_market.value if n.tco2e_market.value is not None else n.tco2e_location.value
    if basis == "cost":
        return lambda n: n.cost_cny.value
    return lambda n: n.energy[carrier].value if carrier in n.energy else None


def flows(tree: StructureKpis, value: Measure, sources: dict[str, float] | None = None,
          max_depth: int | None = None) -> list[Flow]:
    """Flows from ``sources`` (label → amount, e.g. grid and own PV) into the root, from every node into
    its children and its unmetered remainder, and from each leaf into its end use. Below
    ``max_depth`` the tree is folded: a node at that depth flows straight into the end uses and
    unmetered remainders of its whole subtree, so a plant of hundreds of meters stays readable.
    Negative and zero amounts are left out: a Sankey cannot draw them (a negative remainder is a
    metering fault, shown in the tables)."""
    by_id = {n.id: n for n in tree.nodes}
    out: list[Flow] = []
    root = next((n for n in tree.nodes if n.parent is None), None)
    if root is None:
        return out
    for label, amount in (sources or {}).items():
        if amount > 0:
            out.append(Flow(f"source:{label}", f"node:{root.id}", amount))

    def ends(n: NodeKpis, into: dict[str, float]) -> None:
        """The end uses and unmetered remainders ``n``'s value ends in."""
        own = value(n)
        if own is None or own <= 0:
            return
        kids = [(by_id[k], value(by_id[k])) for k in n.children]
        kids = [(k, v) for k, v in kids if v is not None and v > 0]
        if not kids:
            into[f"end_use:{n.end_use}"] = into.get(f"end_use:{n.end_use}", 0.0) + own
            return
        rest = own - sum(v for _, v in kids)
        if rest > 0:
            into[f"{UNMETERED}:{n.id}"] = rest
        for k, _ in kids:
            ends(k, into)

    for n in tree.nodes:
        own = value(n)
        if own is None or own <= 0 or (max_depth is not None and n.depth > max_depth):
            continue
        kids = [(k, value(by_id[k])) for k in n.children]
        kids = [(k, v) for k, v in kids if v is not None and v > 0]
        if max_depth is not None and n.depth == max_depth and kids:
            folded: dict[str, float] = {}
            ends(n, folded)
            out += [Flow(f"node:{n.id}", target, v) for target, v in folded.items()]
            continue
        for k, v in kids:
            out.append(Flow(f"node:{n.id}", f"node:{k}", v))
        if kids:
            rest = own - sum(v for _, v in kids)
            if rest > 0:
                out.append(Flow(f"node:{n.id}", f"{UNMETERED}:{n.id}", rest))
        else:
            out.append(Flow(f"node:{n.id}", f"end_use:{n.end_use}", own))
    return out
