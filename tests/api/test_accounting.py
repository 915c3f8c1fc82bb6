"""Accounting rules of the KPI engine, each against a hand-worked figure (docs/domain.md).

Readings go in through the gateway's PostgreSQL sink and the rollup refresher; every window
and every "now" is pinned, so no result depends on the hour the tests run at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lingtan.db import get_engine
from lingtan.reading import Reading
from tests.pipeline import store_readings

TZ = "Asia/Shanghai"
REL = 1e-9


def local(text: str) -> datetime:
    """A Shenyang wall-clock time as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ)).astimezone(UTC)


@dataclass
class Ramp:
    """One counter read every minute for ``minutes`` from ``start``, rising evenly by ``amount``.

    Ramps of the same counter continue from where the previous one ended; between them the
    counter stands still, so nothing is counted across the pause.
    """

    meter: str
    quantity: str
    start: datetime
    minutes: int
    amount: float


def seed(url: str, site_file: dict[str, Any], ramps: list[Ramp]) -> None:
    from api.services.site_model import import_site_file

    with get_engine(url).begin() as conn:
        import_site_file(conn, site_file)
    totals: dict[tuple[str, str], float] = {}
    rows: list[Reading] = []
    for r in sorted(ramps, key=lambda r: r.start):
        base = totals.get((r.meter, r.quantity), 1000.0)  # field counters never start at zero
        for i in range(r.minutes + 1):
            rows.append(Reading(r.start + timedelta(minutes=i), r.meter, r.quantity,
                                base + r.amount * i / r.minutes))
        totals[(r.meter, r.quantity)] = base + r.amount
    store_readings(url, rows)


def site(site_id: str, meters: list[dict[str, Any]], energy: dict[str, Any] | None = None,
         green_power: list[dict[str, Any]] | None = None, region: str = "north_east") -> dict[str, Any]:
    return {"site": {"id": site_id, "name": site_id, "timezone": TZ, "grid_region": region},
            "energy": energy or {}, "meters": meters, "green_power": green_power or []}


def kpis(url: str, site_id: str, start: datetime, end: datetime, now: datetime | None = None):
    from api.services.kpi import window_kpis

    with get_engine(url).connect() as conn:
        return window_kpis(conn, site_id, start, end, now or end + timedelta(days=400))


GRID = {"id": "grid", "role": "grid_import"}
PV = {"id": "pv", "role": "pv_generation"}


# --- 7: a role the site does not have is not a gap ---------------------------------------------


def test_a_grid_meter_without_an_export_register_is_not_a_gap(db: str) -> None:
    day = local("2026-03-02T00:00:00")
    # A whole day read every minute (from an hour before, so its first minute has a pair): 100 kWh/h
    # = 2400 kWh from a grid meter that has no export register, and no grid_export meter at all.
    # Nothing is missing from this day.
    seed(db, site("no-export", [GRID]),
         [Ramp("grid", "active_energy_import", day - timedelta(hours=1), 25 * 60, 2500.0)])
    k = kpis(db, "no-export", day, day + timedelta(days=1))
    e = k.electricity
    assert e.consumption_kwh.value == pytest.approx(2400.0, rel=REL)
    # before: the export side had one meter without data → coverage 0 for everything built on it
    assert e.grid_export_kwh.coverage == 1.0
    assert e.consumption_kwh.coverage == pytest.approx(1.0)
    assert e.green_power_ratio.coverage == pytest.approx(1.0)
    assert k.carbon.intensity_location_kg_per_kwh.coverage == pytest.approx(1.0)
    assert k.energy.tce_total.coverage == pytest.approx(1.0)
