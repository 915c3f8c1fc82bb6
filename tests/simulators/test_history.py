"""Backfilled history is the same trajectory the live model takes."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from lingtan.cli.demo import DEMO_SITE_FILE
from lingtan.core.counters import counter_energy
from lingtan.core.site_file import load_site_file
from lingtan.core.site_model import import_site_file
from lingtan.core.structure import load_structure, resolve
from lingtan.core.structure_kpis import structure_kpis
from lingtan.core.structure_schema import CARRIERS
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from simulators.history import generate, model_at
from simulators.site import SiteModel
from tests.pipeline import store_readings

START = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # local midnight, Tuesday
SEED = 3


def test_samples_every_step_including_both_ends() -> None:
    rows = list(generate(3, START, START + timedelta(hours=1), 300))
    times = sorted({t for t, *_ in rows})
    assert times == [START + timedelta(seconds=300 * k) for k in range(13)]
    per_time = defaultdict(int)
    for t, *_ in rows:
        per_time[t] += 1
    assert set(per_time.values()) == {len(SiteModel(3, START).truth())}


def test_history_matches_the_live_model_and_continues_it() -> None:
    end = START + timedelta(hours=2)
    rows = {(t, d, q): v for t, d, q, v in generate(3, START, end, 600)}
    live = SiteModel(3, START)
    for k in range(13):
        t = START + timedelta(seconds=600 * k)
        live.advance_to(t)
        for (d, q), v in live.truth().items():
            assert rows[(t, d, q)] == v
    handed_over = model_at(3, START, end)
    assert handed_over.to_dict() == live.to_dict()


def test_rejects_bad_steps() -> None:
    with pytest.raises(ValueError):
        list(generate(3, START, START + timedelta(hours=1), 0))


def test_a_day_of_the_demo_plant_adds_up_node_by_node(db: str) -> None:
    """The demo site file imports with its structure; a weekday of simulated history, stored and
    rolled up, gives every node with sub-metered children a little more energy than its children
    count (cable losses and small unmetered loads)."""
    sf = load_site_file(DEMO_SITE_FILE)[0]
    assert sf.structure is not None
    with get_engine(db).begin() as conn:
        result = import_site_file(conn, sf)
        assert result.structure_nodes == len(sf.structure.nodes) and result.structure_changed
        assert load_structure(conn, "demo-plant") == sf.structure
    resolved = resolve(sf.structure)
    counted = {key for carrier in CARRIERS for form in resolved.forms(carrier).values() for key in form}
    counted |= {(n.production_meter, "production_count") for n in sf.structure.nodes if n.production_meter}
    day = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # Tuesday 16 June, local midnight
    end = day + timedelta(days=1)
    store_readings(db, [Reading(t, d, q, v) for t, d, q, v in generate(SEED, day, end, 60.0, max_step=60)
                        if (d, q) in counted])

    with get_engine(db).connect() as conn:
        reporting = conn.execute(sa.text(
            "SELECT count(DISTINCT r.meter_id) FROM readings r JOIN meters m ON m.id = r.meter_id"
            " WHERE m.role IS NULL AND r.quantity = 'active_energy_import'")).scalar_one()
        assert reporting >= 30

        def energy(form: dict[tuple[str, str], float]) -> float:
            total = 0.0
            for (meter, quantity), coef in form.items():
                e = counter_energy(conn, [meter], quantity, day, end)
                assert e.coverage > 0.99 and e.gap_value == 0.0, meter
                total += coef * e.value
            return total

        forms = resolved.forms("electricity")
        shares = {}
        for nid, node in resolved.nodes.items():
            metered_children = [c for c in node.children if c in forms]
            if "electricity" not in node.own or not metered_children:
                continue
            parent = energy(node.own["electricity"])
            children = sum(energy(forms[c]) for c in metered_children)
            shares[nid] = (parent - children) / parent * 100
        gas = energy(resolved.forms("gas")["plant"])
        engine = {n.id: n for n in structure_kpis(conn, "demo-plant", day, end, end).nodes}
    # every feeder with sub-meters, the lines and the site itself
    assert {"plant", "ws-a", "ws-b", "line-1", "line-2", "line-3", "paint-shop", "air-station",
            "boiler-house", "office-building"} <= set(shares)
    for nid, share in shares.items():
        assert 0.3 < share < sf.structure.unmetered_threshold_pct, (nid, share)
    assert 1.5 < shares["plant"] < 4.0  # main cables, gatehouse, outdoor lighting
    assert gas > 1000
    # the per-node engine sees the same: nothing flagged, and the plant is the site
    for nid, share in shares.items():
        [u] = [u for u in engine[nid].unmetered if u.carrier == "electricity"]
        assert u.share == pytest.approx(share / 100, rel=1e-6) and not u.flagged, nid
    assert "heat" not in engine["plant"].energy  # recovered heat is passed on inside, not bought
    assert engine["ws-a"].production is not None and engine["ws-a"].production.value > 30_000
