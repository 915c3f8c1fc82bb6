"""Figures per node of the metering structure against a hand-worked plant (docs/domain.md,
"Metering structure").

Shenyang, 22:00 on 10 March 2026 to 09:00 on 11 March (local midnight inside), every counter
rising a fixed amount each minute from 21:00 to 10:00:

    inc     2.0 kWh/min  (+2.0 in the 15 steps ending 08:00–08:14)     grid incomer, the root
    f1      1.0          workshop 1's feeder, which also feeds f2a
    f2a     0.2          a sub-feeder in workshop 1's switchboard that belongs to workshop 2
    f2      0.4          (+2.0 in the same steps)                       workshop 2's feeder
    shared  0.2          a transformer both workshops share half and half
    count1  0.5 pcs/min  workshop 1's production counter

    ws1 = f1 − f2a + 0.5 × shared (a virtual meter) = 0.9 kWh/min → 660 min × 0.9 = 594 kWh
    ws2 = f2 + f2a + 0.5 × shared                   = 0.7 kWh/min → 462 + 30 (burst) = 492 kWh
    root = inc = 2 × 660 + 30 = 1350 kWh; its children account for 594 + 492 = 1086 kWh,
    so 264 kWh (19.56 %) is unmetered, above the 5 % threshold.

Tariff: valley 23:00–07:00 at 0.30, peak 08:00–11:00 at 1.00, 0.60 elsewhere, in Shenyang time:
    ws1  flat 120 min × 0.9 = 108 kWh → 64.80; valley 480 × 0.9 = 432 → 129.60; peak 54 → 54.00
    ws2  flat 120 × 0.7 = 84 → 50.40; valley 336 → 100.80; peak 60 × 0.7 + 30 = 72 → 72.00
A minute bucket holds the counter step that ends in it, so the burst is the quarter hour from 08:00.
Maximum 15-minute demand: ws2 08:00–08:15 = 15 × 2.7 kWh = 40.5 kWh → 162 kW; root 60 kWh → 240 kW.
Carbon: the site overrides the national grid factor (0.60) and residual mix (0.55) for 2026; no
PV, no green power, so a kWh carries 0.60 kg (location) and 0.55 kg (market); electricity's
standard coal is 0.1229 kgce/kWh (GB/T 2589-2020 equivalent value); carbon price 100 CNY/t.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lingtan.kernel.db import get_engine
from tests.api.test_accounting import Ramp, local, seed

REL = 1e-9
START, END = local("2026-03-10T22:00:00"), local("2026-03-11T09:00:00")


def structure() -> dict[str, Any]:
    return {
        "virtual_meters": [{"id": "ws1-net", "formula": "f1 − f2a + 0.5 × shared"}],
        "carbon_price": [{"year": 2026, "cny_per_tco2e": 100, "source": "test"}],
        "nodes": [
            {"id": "plant", "name": "Plant", "kind": "site", "meters": [{"meter": "inc"}]},
            {"id": "ws1", "name": "Workshop 1", "kind": "workshop", "parent": "plant", "department": True,
             "end_use": "production_process", "meters": [{"meter": "ws1-net"}], "production_meter": "count1",
             "floor_area_m2": 1000, "headcount": 50},
            {"id": "ws2", "name": "Workshop 2", "kind": "workshop", "parent": "plant", "department": True,
             "meters": [{"meter": "f2"}, {"meter": "f2a"}, {"meter": "shared"}]},
        ],
    }


def site_file(struct: dict[str, Any] | None = None) -> dict[str, Any]:
    s = struct or structure()
    s["nodes"][2]["meters"][2] = {"meter": "half-shared"}
    s["virtual_meters"].append({"id": "half-shared", "formula": "shared / 2"})
    return {
        "site": {"id": "tree", "name": "tree", "timezone": "Asia/Shanghai", "grid_region": "national"},
        "energy": {"tariff": {"flat_cny_per_kwh": 0.6, "bands": [
            {"name": "valley", "start": "23:00", "end": "07:00", "price_cny_per_kwh": 0.3},
            {"name": "peak", "start": "08:00", "end": "11:00", "price_cny_per_kwh": 1.0}]}},
        "meters": [{"id": "inc", "role": "grid_import"}, {"id": "f1"}, {"id": "f2a"}, {"id": "f2"},
                   {"id": "shared"}, {"id": "count1"}],
        "factor_overrides": [
            {"kind": "grid", "subject": "national", "value": 0.6, "unit": "kgCO2/kWh", "source": "test"},
            {"kind": "grid_residual", "subject": "national", "value": 0.55, "unit": "kgCO2/kWh",
             "source": "test"}],
        "structure": s,
    }


def ramps() -> list[Ramp]:
    t0, burst = local("2026-03-10T21:00:00"), local("2026-03-11T07:59:00")
    after = local("2026-03-11T08:14:00")
    before, rest = int((burst - t0) / timedelta(minutes=1)), 106  # 21:00–07:59, 08:14–10:00
    out = []
    for meter, rate, extra in (("inc", 2.0, 2.0), ("f1", 1.0, 0), ("f2a", 0.2, 0), ("f2", 0.4, 2.0),
                               ("shared", 0.2, 0), ("count1", 0.5, 0)):
        q = "production_count" if meter == "count1" else "active_energy_import"
        out += [Ramp(meter, q, t0, before, rate * before), Ramp(meter, q, burst, 15, (rate + extra) * 15),
                Ramp(meter, q, after, rest, rate * rest)]
    return out


@pytest.fixture
def tree(db: str):
    from lingtan.core.structure_kpis import structure_kpis

    seed(db, site_file(), ramps())
    with get_engine(db).connect() as conn:
        result = structure_kpis(conn, "tree", START, END, END + timedelta(days=400))
    return db, {n.id: n for n in result.nodes}, result


def test_each_node_equals_the_hand_worked_figures(tree) -> None:
    _, nodes, _ = tree
    ws1, ws2, plant = nodes["ws1"], nodes["ws2"], nodes["plant"]
    assert ws1.energy["electricity"].value == pytest.approx(594.0, rel=REL)
    assert ws2.energy["electricity"].value == pytest.approx(492.0, rel=REL)
    assert plant.energy["electricity"].value == pytest.approx(1350.0, rel=REL)
    assert ws1.tce.value == pytest.approx(594 * 0.1229 / 1000, rel=REL)
    assert ws1.tco2e_location.value == pytest.approx(594 * 0.6 / 1000, rel=REL)
    assert ws1.tco2e_market.value == pytest.approx(594 * 0.55 / 1000, rel=REL)
    assert ws1.carbon_cost_cny.value == pytest.approx(594 * 0.55 / 1000 * 100, rel=REL)
    assert ws1.production.value == pytest.approx(330.0, rel=REL)
    assert ws1.tce_per_unit_kg.value == pytest.approx(594 * 0.1229 / 330, rel=REL)
    assert ws1.per_m2["kwh"].value == pytest.approx(0.594, rel=REL)
    assert ws1.per_person["kgco2e"].value == pytest.approx(594 * 0.55 / 50, rel=REL)
    assert ws1.energy["electricity"].coverage == pytest.approx(1.0)


def test_unmetered_energy_and_metering_coverage(tree) -> None:
    _, nodes, result = tree
    (u,) = nodes["plant"].unmetered
    assert u.value.value == pytest.approx(264.0, rel=REL)
    assert u.share == pytest.approx(264 / 1350, rel=REL)
    assert u.flagged
    assert nodes["plant"].sub_metered_share["electricity"] == pytest.approx(1086 / 1350, rel=REL)
    assert nodes["ws1"].unmetered == []  # no children: nothing to compare
    (level,) = result.levels
    assert (level.depth, level.energy, level.sub_metered) == (0, pytest.approx(1350.0), pytest.approx(1086.0))


def test_time_of_use_split_across_local_midnight_and_band_edges(tree) -> None:
    _, nodes, _ = tree
    bands = {b.band: b for b in nodes["ws1"].cost_by_band}
    assert bands["flat (no band)"].kwh == pytest.approx(108.0, rel=REL)
    assert bands["valley"].kwh == pytest.approx(432.0, rel=REL)
    assert bands["peak"].kwh == pytest.approx(54.0, rel=REL)
    assert nodes["ws1"].cost_cny.value == pytest.approx(64.8 + 129.6 + 54.0, rel=REL)
    bands2 = {b.band: b.cost_cny for b in nodes["ws2"].cost_by_band}
    assert bands2 == {"flat (no band)": pytest.approx(50.4), "valley": pytest.approx(100.8),
                      "peak": pytest.approx(72.0)}


def test_maximum_15_minute_demand_and_when(tree) -> None:
    _, nodes, _ = tree
    assert nodes["ws2"].demand.kw.value == pytest.approx(162.0, rel=REL)
    assert nodes["ws2"].demand.at == local("2026-03-11T08:00:00")
    assert nodes["plant"].demand.kw.value == pytest.approx(240.0, rel=REL)
    assert nodes["ws1"].demand.kw.value == pytest.approx(54.0, rel=REL)


def test_the_root_has_the_site_figures_of_the_one_engine(tree) -> None:
    from lingtan.core.kpi import window_kpis

    db, nodes, _ = tree
    with get_engine(db).connect() as conn:
        site = window_kpis(conn, "tree", START, END, END + timedelta(days=400))
    plant = nodes["plant"]
    assert plant.energy["electricity"].value == pytest.approx(site.electricity.consumption_kwh.value, rel=REL)
    assert plant.tco2e_location.value == pytest.approx(site.carbon.scope2_location_t.value, rel=REL)
    assert plant.tco2e_market.value == pytest.approx(site.carbon.scope2_market_t.value, rel=REL)
    assert plant.tce.value == pytest.approx(site.energy.tce_total.value, rel=REL)
    assert plant.cost_cny.value == pytest.approx(site.electricity.cost_cny.value, rel=REL)


def test_a_tariff_with_validity_dates_takes_over_at_local_midnight(db: str) -> None:
    """From 11 March a new notice: valley 0.25, peak 1.20, 0.65 elsewhere. ws1 (0.9 kWh/min):
    22:00–23:00 54 kWh × 0.60 = 32.40, 23:00–24:00 54 × 0.30 = 16.20 (old tariff); 00:00–07:00
    378 × 0.25 = 94.50, 07:00–08:00 54 × 0.65 = 35.10, 08:00–09:00 54 × 1.20 = 64.80 → 243.00 CNY."""
    from lingtan.core.kpi import window_kpis
    from lingtan.core.structure_kpis import structure_kpis

    sf = site_file()
    sf["energy"]["tariffs"] = [{"valid_from": "2026-03-11", "flat_cny_per_kwh": 0.65, "bands": [
        {"name": "valley", "start": "23:00", "end": "07:00", "price_cny_per_kwh": 0.25},
        {"name": "peak", "start": "08:00", "end": "11:00", "price_cny_per_kwh": 1.2}]}]
    seed(db, sf, ramps())
    now = END + timedelta(days=400)
    with get_engine(db).connect() as conn:
        nodes = {n.id: n for n in structure_kpis(conn, "tree", START, END, now).nodes}
        site = window_kpis(conn, "tree", START, END, now)
    ws1 = nodes["ws1"]
    assert {(b.band, b.price_cny_per_kwh): b.kwh for b in ws1.cost_by_band} == {
        ("flat (no band)", 0.6): pytest.approx(54.0), ("valley", 0.3): pytest.approx(54.0),
        ("valley", 0.25): pytest.approx(378.0), ("flat (no band)", 0.65): pytest.approx(54.0),
        ("peak", 1.2): pytest.approx(54.0)}
    assert ws1.cost_cny.value == pytest.approx(243.0, rel=REL)
    # the site's own cost follows the same dated tariff, and the root meters what the site does
    assert nodes["plant"].cost_cny.value == pytest.approx(site.electricity.cost_cny.value, rel=REL)
    # inc: 22:00–24:00 240 kWh (120 flat at 0.60, 120 valley at 0.30), then 840 valley at 0.25,
    # 120 flat at 0.65 and 150 peak (120 + the 30 kWh burst) at 1.20
    assert site.electricity.cost_cny.value == pytest.approx(72 + 36 + 210 + 78 + 180, rel=REL)


def test_overlapping_dated_tariffs_are_refused_naming_them() -> None:
    from pydantic import ValidationError

    from lingtan.core.site_schema import SiteParams

    with pytest.raises(ValidationError) as err:
        SiteParams.model_validate({"tariffs": [
            {"valid_from": "2026-01-01", "valid_to": "2026-06-30", "flat_cny_per_kwh": 0.6},
            {"valid_from": "2026-06-01", "flat_cny_per_kwh": 0.7}]})
    assert "tariffs[1] (from 2026-06-01) overlaps tariffs[0]" in str(err.value)


def test_flows_conserve_energy_and_show_the_unmetered_remainder(tree) -> None:
    from lingtan.core.structure_flows import flows, measure

    _, _, result = tree
    got = flows(result, measure("energy", "electricity"), {"grid": 1350.0})
    by_edge = {(f.source, f.target): f.value for f in got}
    assert by_edge == {
        ("source:grid", "node:plant"): pytest.approx(1350.0),
        ("node:plant", "node:ws1"): pytest.approx(594.0), ("node:plant", "node:ws2"): pytest.approx(492.0),
        ("node:plant", "unmetered:plant"): pytest.approx(264.0),
        ("node:ws1", "end_use:production_process"): pytest.approx(594.0),
        ("node:ws2", "end_use:unassigned"): pytest.approx(492.0)}
    for node in ("node:plant", "node:ws1", "node:ws2"):  # what flows in flows out
        assert sum(v for (s, _), v in by_edge.items() if s == node) == pytest.approx(
            sum(v for (_, t), v in by_edge.items() if t == node))
    tce = flows(result, measure("tce"))
    assert sum(f.value for f in tce if f.source == "node:plant") == pytest.approx(1350 * 0.1229 / 1000)


def test_a_folded_sankey_keeps_the_end_uses_and_remainders_of_the_subtree(tree) -> None:
    from lingtan.core.structure_flows import flows, measure

    _, _, result = tree
    got = {(f.source, f.target): f.value for f in flows(result, measure("energy"), max_depth=0)}
    assert got == {("node:plant", "unmetered:plant"): pytest.approx(264.0),
                   ("node:plant", "end_use:production_process"): pytest.approx(594.0),
                   ("node:plant", "end_use:unassigned"): pytest.approx(492.0)}


def test_a_node_series_adds_up_to_the_window(tree) -> None:
    from lingtan.core.structure_series import node_series

    db, nodes, _ = tree
    with get_engine(db).connect() as conn:
        s = node_series(conn, "tree", "ws2", START, END, "1h", END + timedelta(days=400))
    assert [p.time for p in s.points][:2] == [START, START + timedelta(hours=1)] and len(s.points) == 11
    kwh = [p.energy["electricity"] for p in s.points]
    assert kwh[0] == pytest.approx(42.0)  # 0.7 kWh a minute
    assert kwh[10] == pytest.approx(42.0 + 30.0)  # 08:00–09:00 holds the burst
    assert sum(kwh) == pytest.approx(nodes["ws2"].energy["electricity"].value)
    assert s.points[0].tco2e_location == pytest.approx(42.0 * 0.6 / 1000)
    assert s.points[0].coverage == pytest.approx(1.0)


def test_the_node_series_route(tree, api_client) -> None:
    r = api_client.get("/api/v1/sites/tree/structure/nodes/ws1/series",
                       params={"start": START.isoformat(), "end": END.isoformat(), "resolution": "1h"})
    assert r.status_code == 200, r.text
    assert sum(p["energy"]["electricity"] for p in r.json()["points"]) == pytest.approx(594.0)
    missing = api_client.get("/api/v1/sites/tree/structure/nodes/nowhere/series",
                             params={"start": START.isoformat()})
    assert missing.status_code == 404 and "nowhere" in missing.text
