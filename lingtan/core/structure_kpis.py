"""Figures per node of a site's metering structure for any window (docs/domain.md, "Metering structure").

The counters are read once for every meter of the tree (``counters.counter_energy_many``), and
the site-wide conversions come from the one KPI engine (``kpi.window_kpis_many``) for the same
window, cut at New Year: a node's electricity carries the site's carbon per kWh consumed
(location, and market with green power spread in proportion to electricity), so the root of a
structure metering what the site's roles meter has exactly the site's figures. Gas, heat and
steam are converted with the same factors and rules as the site (``carbon.convert``,
``gas.gas_basis``). Cost per time-of-use band and the maximum 15-minute demand are read from
the 15-minute rollups, 1-minute ones at the window's ragged edges (``tariff.node_profiles``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import Field

from lingtan.core import gas, structure_cache, tariff
from lingtan.core.carbon import convert
from lingtan.core.counters import CounterEnergy, counter_energy_many, counter_request
from lingtan.core.factors import Factor, factor
from lingtan.core.figures import Figure
from lingtan.core.kpi import WindowKpis, window_kpis_many
from lingtan.core.site_model import SiteEnergyModel, load_site_model
from lingtan.core.site_schema import Tariff
from lingtan.core.structure import Form, Key, Resolved, load_structure, resolve
from lingtan.core.structure_schema import CARRIERS, UNIT
from lingtan.core.tariff import BandCost
from lingtan.kernel import clock
from lingtan.kernel.periods import split_by_year

QUARTERS_PER_HOUR = 4.0
Sums = dict[Key, CounterEnergy]  # one year piece's counter energy per (meter, quantity)


@dataclass
class Unmetered:
    carrier: str
    own: Annotated[float, Field(description="what the node's own meters count")]
    sub_metered: Annotated[float, Field(description="what its children's meters count")]
    value: Annotated[Figure, Field(description="own − sub_metered, in the carrier's unit")]
    share: Annotated[float | None, Field(description="of the node's own metered energy, 0..1")]
    flagged: Annotated[bool, Field(description="share above the structure's unmetered_threshold_pct")]


@dataclass
class Demand:
    kw: Figure
    at: Annotated[datetime | None, Field(description="start of the 15-minute interval of the maximum")]


@dataclass
class NodeKpis:
    id: str
    name: str
    kind: str
    parent: str | None
    depth: int
    end_use: str
    department: bool
    children: list[str]
    energy: Annotated[dict[str, Figure], Field(description=(
        "per carrier: electricity kWh, gas m³, steam t, heat GJ, water m³"))]
    tce: Annotated[Figure, Field(description="standard coal of the node's energy (GB/T 2589-2020)")]
    tco2e_location: Figure
    tco2e_market: Figure
    cost_cny: Annotated[Figure, Field(description="electricity at the site's tariff bands")]
    cost_by_band: list[BandCost]
    demand: Demand
    carbon_cost_cny: Annotated[Figure, Field(description="tCO2e (market) × the internal carbon price")]
    production: Figure | None
    tce_per_unit_kg: Figure | None
    tco2e_per_unit_kg: Figure | None
    per_m2: Annotated[dict[str, Figure], Field(description="kWh, kgce and kgCO2e per m² of floor area")]
    per_person: Annotated[dict[str, Figure], Field(description="kWh, kgce and kgCO2e per person")]
    unmetered: list[Unmetered]
    sub_metered_share: Annotated[dict[str, float | None], Field(description=(
        "per carrier: the share of the node's own metered energy its children's meters account for"))]


@dataclass
class LevelCoverage:
    depth: int
    carrier: str
    energy: float
    sub_metered: Annotated[float, Field(description="what the next level's meters account for")]
    share: float | None


@dataclass
class StructureKpis:
    site_id: str
    start: datetime
    end: datetime
    timezone: str
    nodes: list[NodeKpis]
    levels: Annotated[list[LevelCoverage], Field(description=(
        "metering coverage by level, in the spirit of GB 17167-2006: the share of each level's "
        "energy that the sub-meters of the level below account for"))]
    unmetered_threshold_pct: float
    carbon_price_cny_per_tco2e: float | None
    factors: list[Factor]
    notes: list[str] = field(default_factory=list)


def structure_kpis(conn: sa.Connection, site_id: str, start: datetime, end: datetime,
                   now: datetime | None = None, *, model: SiteEnergyModel | None = None) -> StructureKpis:
    """Every node's figures for [start, end); raises ``queries.NotFound`` for an unknown site."""
    now = now or clock.now()
    model = model or load_site_model(conn, site_id)
    r = resolve(load_structure(conn, site_id))
    tz = model.site.timezone
    pieces = split_by_year(start, end, tz)
    site = window_kpis_many(conn, site_id, [(a, b) for _, a, b in pieces], now, model=model)
    forms = {c: r.forms(c) for c in CARRIERS}
    keys = sorted({k for per in forms.values() for f in per.values() for k in f}
                  | {(n.node.production_meter, "production_count") for n in r.nodes.values()
                     if n.node.production_meter})
    reqs = [counter_request([m], q, a, b) for _, a, b in pieces for m, q in keys]
    got = counter_energy_many(conn, reqs) if reqs else []
    per_piece = [dict(zip(keys, got[i * len(keys):(i + 1) * len(keys)], strict=True))
                 for i in range(len(pieces))]
    electric = list(forms["electricity"].items())
    profile_of: dict[str, list[tuple[Tariff, tariff.NodeProfile]]] = {nid: [] for nid, _ in electric}
    electric_forms = [f for _, f in electric]
    for in_force, a, b in tariff.tariffs_in(model.params, tz, start, end):
        # whole days that have ended come from the day cache; the ragged ends are read as they are
        first, last = structure_cache.whole_days(a, b, now)
        live = [(a, b)]
        if electric_forms and structure_cache.cacheable(in_force, tz, first, last):
            cached = structure_cache.summed(conn, site_id, electric_forms, in_force, tz, first, last)
            for (nid, _), prof in zip(electric, cached, strict=True):
                profile_of[nid].append((in_force, prof))
            live = [(lo, hi) for lo, hi in ((a, first), (last, b)) if lo < hi]
        for lo, hi in live:
            profiles = tariff.node_profiles(conn, electric_forms, lo, hi, tz, in_force)
            for (nid, _), prof in zip(electric, profiles, strict=True):
                profile_of[nid].append((in_force, prof))
    prices = {p.year: p.cny_per_tco2e for p in r.structure.carbon_price}
    notes: list[str] = []
    used: dict[str, Factor] = {}
    out = [_node(r, nid, model, pieces, site, per_piece, forms, profile_of.get(nid), prices, used)
           for nid in r.nodes]
    levels = _levels(r, {n.id: n for n in out})
    year_price = prices.get(pieces[0][0]) if len(pieces) == 1 else None
    if r.structure.green_allocation == "none":
        notes.append("green power is not allocated to nodes (structure.green_allocation: none): "
                     "market figures of nodes are left empty")
    return StructureKpis(site_id, start, end, tz, out, levels, r.structure.unmetered_threshold_pct,
                         year_price, sorted(used.values(), key=lambda f: f.key), notes)


def _amount(form: Form, sums: Sums) -> tuple[float, float]:
    """(value incl. energy counted across gaps, coverage) of a signed combination of counters."""
    value, cov = 0.0, 1.0
    for key, coef in form.items():
        e = sums[key]
        value += coef * (e.value + e.gap_value)
        cov = min(cov, e.coverage)
    return value, cov


def _node(r: Resolved, nid: str, model: SiteEnergyModel, pieces: list[tuple[int, datetime, datetime]],
          site: list[WindowKpis], per_piece: list[Sums], forms: dict[str, dict[str, Form]],
          profiles: list[tuple[Tariff, tariff.NodeProfile]] | None, prices: dict[int, float],
          used: dict[str, Factor]) -> NodeKpis:
    rn = r.nodes[nid]
    n, p = rn.node, model.params
    energy: dict[str, Figure] = {}
    tce = loc = mkt = carbon_cost = 0.0
    tce_cov = carbon_cov = 1.0
    market_known = r.structure.green_allocation != "none"
    price_known = True
    for (year, _, _), kpis, sums in zip(pieces, site, per_piece, strict=True):
        overrides = model.overrides_for(year)
        kw: dict = {"factor_set": model.factor_set, "year": year, "overrides": overrides}
        piece_loc = piece_mkt = 0.0
        for carrier in CARRIERS:
            form = forms[carrier].get(nid)
            if form is None:
                continue
            value, cov = _amount(form, sums)
            old = energy.get(carrier)
            energy[carrier] = Figure((old.value or 0.0) + value if old else value, UNIT[carrier],
                                     min(old.coverage, cov) if old else cov)
            amount = max(value, 0.0)
            if carrier == "electricity":
                f = factor(model.factor_set, "tce", "electricity", year, overrides)
                used[f.key] = f
                tce += amount * f.value / 1000.0
                il = kpis.carbon.intensity_location_kg_per_kwh.value
                im = kpis.carbon.intensity_market_kg_per_kwh.value
                if il is None:  # the site's roles meter no consumption: the grid factor itself
                    c = convert("electricity", amount, "kWh", region=model.site.grid_region, **kw)
                    _use(used, c.factors)
                    piece_loc += c.tco2e or 0.0
                    market_known = False
                else:
                    piece_loc += amount * il / 1000.0
                    piece_mkt += amount * (im or 0.0) / 1000.0
                    market_known = market_known and im is not None
            elif carrier == "gas":
                basis = gas.gas_basis(p)
                gas_kw = {**kw, "overrides": {**overrides, **gas.factors(p, model.site.id, model.factor_set,
                                                                         year, overrides)}}
                c = convert("natural_gas", basis.nm3(amount), "m3", **gas_kw)
                _use(used, c.factors)
                piece_loc, piece_mkt, tce = piece_loc + (c.tco2e or 0.0), piece_mkt + (c.tco2e or 0.0), \
                    tce + (c.tce or 0.0)
            elif carrier in ("heat", "steam"):
                c = convert(carrier, amount, UNIT[carrier], steam_convention=p.steam_convention, **kw)
                _use(used, c.factors)
                piece_loc, piece_mkt, tce = piece_loc + (c.tco2e or 0.0), piece_mkt + (c.tco2e or 0.0), \
                    tce + (c.tce or 0.0)
            if carrier != "water":
                tce_cov = carbon_cov = min(carbon_cov, cov)
        loc += piece_loc
        mkt += piece_mkt
        price = prices.get(year)
        if price is None:
            price_known = False
        else:
            carbon_cost += piece_mkt * price
    cov_all = min(tce_cov, carbon_cov)
    metered = bool(energy) and any(c != "water" for c in energy)
    tco2e_mkt = Figure(mkt if market_known and metered else None, "tCO2e", cov_all)
    elec = energy.get("electricity")
    bands: list[BandCost] = []
    cost = None
    if profiles and tariff.by_time_of_day(p):
        bands = tariff.merged([line for t, prof in profiles for line in tariff.cost_by_band(t, prof.day)])
        cost = tariff.total(bands)
    elif elec is not None and p.tariff.flat_cny_per_kwh is not None:
        cost = max(elec.value or 0.0, 0.0) * p.tariff.flat_cny_per_kwh
    demand = Demand(Figure(None, "kW", elec.coverage if elec else 1.0), None)
    peaks = [prof for _, prof in profiles or [] if prof.peak_kwh is not None]
    if peaks and elec is not None:
        top = max(peaks, key=lambda prof: prof.peak_kwh or 0.0)
        demand = Demand(Figure((top.peak_kwh or 0.0) * QUARTERS_PER_HOUR, "kW", elec.coverage), top.peak_at)
    prod = _production(n.production_meter, per_piece)
    unit = model.params.production_unit

    def per(total: float | None, den: float | None, k: float, unit_: str, cov: float) -> Figure:
        return Figure(total * k / den if total is not None and den else None, unit_, cov)

    kwh = elec.value if elec else None
    e_cov = elec.coverage if elec else 1.0
    p_cov = min(cov_all, prod.coverage) if prod is not None else cov_all
    per_unit = None if prod is None else per(tce, prod.value, 1000.0, f"kgce/{unit}", p_cov)
    per_unit_c = None if prod is None else per(mkt if market_known else loc, prod.value, 1000.0,
                                               f"kgCO2e/{unit}", p_cov)
    un, sub = _unmetered(r, nid, forms, per_piece)
    return NodeKpis(
        id=nid, name=n.name, kind=n.kind, parent=n.parent, depth=rn.depth, end_use=rn.end_use,
        department=n.department, children=rn.children, energy=energy,
        tce=Figure(tce if metered else None, "tce", tce_cov),
        tco2e_location=Figure(loc if metered else None, "tCO2e", cov_all), tco2e_market=tco2e_mkt,
        cost_cny=Figure(cost, "CNY", e_cov), cost_by_band=bands, demand=demand,
        carbon_cost_cny=Figure(carbon_cost if price_known and tco2e_mkt.value is not None else None, "CNY",
                               cov_all),
        production=prod, tce_per_unit_kg=per_unit, tco2e_per_unit_kg=per_unit_c,
        per_m2={} if n.floor_area_m2 is None else {
            "kwh": per(kwh, n.floor_area_m2, 1.0, "kWh/m2", e_cov),
            "kgce": per(tce if metered else None, n.floor_area_m2, 1000.0, "kgce/m2", tce_cov),
            "kgco2e": per(tco2e_mkt.value, n.floor_area_m2, 1000.0, "kgCO2e/m2", cov_all)},
        per_person={} if n.headcount is None else {
            "kwh": per(kwh, n.headcount, 1.0, "kWh/person", e_cov),
            "kgce": per(tce if metered else None, n.headcount, 1000.0, "kgce/person", tce_cov),
            "kgco2e": per(tco2e_mkt.value, n.headcount, 1000.0, "kgCO2e/person", cov_all)},
        unmetered=[_flag(u, r.structure.unmetered_threshold_pct) for u in un], sub_metered_share=sub,
    )


def _use(used: dict[str, Factor], factors: Sequence[Factor]) -> None:
    for f in factors:
        used[f.key] = f


def _production(meter: str | None, per_piece: list[Sums]) -> Figure | None:
    if meter is None:
        return None
    value, cov = 0.0, 1.0
    for sums in per_piece:
        v, c = _amount({(meter, "production_count"): 1.0}, sums)
        value, cov = value + v, min(cov, c)
    return Figure(value, "units", cov)


def _unmetered(r: Resolved, nid: str, forms: dict[str, dict[str, Form]], per_piece: list[Sums]
               ) -> tuple[list[Unmetered], dict[str, float | None]]:
    """Parent − Σ children where the node has meters of its own and children that meter the carrier."""
    rn = r.nodes[nid]
    out, shares = [], {}
    for carrier, own in rn.own.items():
        kids = [forms[carrier][k] for k in rn.children if k in forms[carrier]]
        if not kids:
            continue
        parent = children = 0.0
        cov = 1.0
        for sums in per_piece:
            v, c = _amount(own, sums)
            parent, cov = parent + v, min(cov, c)
            for f in kids:
                v, c = _amount(f, sums)
                children, cov = children + v, min(cov, c)
        share = (parent - children) / parent if parent > 0 else None
        out.append(Unmetered(carrier, parent, children, Figure(parent - children, UNIT[carrier], cov), share,
                             False))
        shares[carrier] = children / parent if parent > 0 else None
    return out, shares


def _flag(u: Unmetered, threshold_pct: float) -> Unmetered:
    u.flagged = u.share is not None and u.share * 100.0 > threshold_pct
    return u


def _levels(r: Resolved, nodes: dict[str, NodeKpis]) -> list[LevelCoverage]:
    """Per depth and carrier: energy of the nodes with own meters there, and what their children's meters
    account for."""
    acc: dict[tuple[int, str], list[float]] = {}
    for nid, rn in r.nodes.items():
        for u in nodes[nid].unmetered:
            slot = acc.setdefault((rn.depth, u.carrier), [0.0, 0.0])
            slot[0] += u.own
            slot[1] += u.sub_metered
    return [LevelCoverage(d, c, e, s, s / e if e > 0 else None) for (d, c), (e, s) in sorted(acc.items())]
