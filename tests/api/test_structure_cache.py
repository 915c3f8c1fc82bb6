"""The structure's day cache gives what the rollups give, and late data replaces a cached day.

The plant of test_structure_kpis: 10–11 March 2026, Shenyang (the rollup grid's day is Shenyang's),
with workshop 2's feeder silent from 22:31 to 22:44 on the 10th until its readings arrive late."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from lingtan.core import tariff
from lingtan.core.site_model import load_site_model
from lingtan.core.structure import load_structure, resolve
from lingtan.core.structure_kpis import structure_kpis
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.api.test_accounting import Ramp, local, seed
from tests.api.test_structure_kpis import ramps, site_file
from tests.pipeline import store_readings

A, B = local("2026-03-10T00:00:00"), local("2026-03-12T00:00:00")
LATER = B + timedelta(days=400)  # every day of the window has ended: cached
HOLE = (local("2026-03-10T22:31:00"), local("2026-03-10T22:44:00"))


def cached_days(db: str) -> int:
    with get_engine(db).connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM structure_day_cache")).scalar_one()


def check_against_the_rollups(db: str) -> dict:
    """``structure_kpis`` (cached days) against ``tariff.node_profiles`` over the same window."""
    with get_engine(db).connect() as conn:
        nodes = {n.id: n for n in structure_kpis(conn, "tree", A, B, LATER).nodes}
        params = load_site_model(conn, "tree").params
        forms = resolve(load_structure(conn, "tree")).forms("electricity")
        ids = list(forms)
        live = tariff.node_profiles(conn, [forms[i] for i in ids], A, B, "Asia/Shanghai", params.tariff)
    for nid, prof in zip(ids, live, strict=True):
        lines = {(b.band, b.price_cny_per_kwh): b.kwh for b in tariff.cost_by_band(params.tariff, prof.day)}
        assert {(b.band, b.price_cny_per_kwh): b.kwh for b in nodes[nid].cost_by_band} == pytest.approx(
            lines, rel=1e-12), nid
        assert nodes[nid].demand.kw.value == pytest.approx(prof.peak_kwh * 4, rel=1e-12), nid
        if nid != "ws1":  # ws1 draws the same in every quarter hour: any of them is its maximum
            assert nodes[nid].demand.at == prof.peak_at, nid
    return nodes


def test_cached_days_equal_the_rollups_and_late_data_replaces_them(db: str) -> None:
    held = [r for r in ramps() if r.meter == "f2"]
    seed(db, site_file(), [r for r in ramps() if r.meter != "f2"])
    # f2's readings, but those of the hole, arrive first
    f2 = [Ramp(r.meter, r.quantity, r.start, r.minutes, r.amount) for r in held]
    # (tests/api/test_accounting.seed's counter: from 1000, each ramp continuing the last)
    rows: list[Reading] = []
    total = 1000.0
    for r in f2:
        for i in range(r.minutes + 1):
            value = total + r.amount * i / r.minutes
            rows.append(Reading(r.start + timedelta(minutes=i), "f2", r.quantity, value))
        total += r.amount
    store_readings(db, [x for x in rows if not HOLE[0] <= x.time <= HOLE[1]])
    before = check_against_the_rollups(db)
    assert cached_days(db) == 2
    before = check_against_the_rollups(db)  # straight from the cache this time

    store_readings(db, [x for x in rows if HOLE[0] <= x.time <= HOLE[1]])  # the hole, late
    assert cached_days(db) == 1  # the refresher dropped the day it rewrote, and only that day
    after = check_against_the_rollups(db)
    energy = before["ws2"].energy["electricity"].value
    assert after["ws2"].energy["electricity"].value == pytest.approx(energy)
    assert after["ws2"].demand.kw.value == pytest.approx(162.0)
    assert cached_days(db) == 2
