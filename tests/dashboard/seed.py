"""Seed a small demo-plant through the real write path (gateway sink), for dashboard tests."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy.engine import make_url

from gateway.sinks.postgres import register_devices
from lingtan.kernel.db import libpq_url
from lingtan.kernel.reading import Reading
from tests.pipeline import store_readings

SITE_ID = "demo-plant"
SITE_NAME = "Shenyang Demo Plant"
GRID_METER = "main-incomer"
# Mid-morning at the site (10:00 in Shanghai, 02:00 UTC): "today" then holds 10 h, of which the
# seeded 2 h have data, whatever the hour the tests run at. Tests pass ``SEED_END`` (plus a few
# seconds) as "now" instead of reading the machine's clock.
SEED_END = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)
PV_METER = "pv-inverter-1"


@dataclass(frozen=True)
class Seeded:
    end: datetime  # time of the newest reading
    gap: tuple[datetime, datetime]  # no readings from either meter in [start, end)


def seed_demo_plant(url: str, end: datetime | None = None, hours: float = 2.0, step_s: int = 10,
                    gap_minutes: int = 5) -> Seeded:
    """Grid (import/export counters) and PV meters, a reading every ``step_s`` up to ``end``.

    A ``gap_minutes`` outage one hour before ``end`` gives the chart a real gap to show.
    """
    end = (end or SEED_END).replace(microsecond=0)
    register_devices(url, "test-gw", SITE_ID, SITE_NAME, [
        (GRID_METER, "Main incomer", "grid_import", "modbus-tcp"),
        (PV_METER, "Rooftop PV inverter", "pv_generation", "modbus-tcp"),
    ])
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("UPDATE sites SET grid_region = 'north_east', timezone = 'Asia/Shanghai'"
                     " WHERE id = %s", (SITE_ID,))
    gap_start = end - timedelta(hours=1)
    gap = (gap_start, gap_start + timedelta(minutes=gap_minutes))
    steps = int(hours * 3600 / step_s)
    imp, exp, pv_total = 182_000.0, 950.0, 41_000.0
    readings: list[Reading] = []
    for i in range(steps + 1):
        t = end - timedelta(seconds=(steps - i) * step_s)
        grid_kw = 420.0 + 60.0 * math.sin(i / 40.0)
        pv_kw = max(0.0, 180.0 + 70.0 * math.sin(i / 25.0))
        imp += grid_kw * step_s / 3600.0
        pv_total += pv_kw * step_s / 3600.0
        if gap[0] <= t < gap[1]:
            continue  # the meters were unreachable; their counters kept counting
        readings += [
            Reading(t, GRID_METER, "active_power", round(grid_kw, 3)),
            Reading(t, GRID_METER, "active_energy_import", round(imp, 3)),
            Reading(t, GRID_METER, "active_energy_export", exp),
            Reading(t, PV_METER, "active_power", round(pv_kw, 3)),
            Reading(t, PV_METER, "active_energy_export", round(pv_total, 3)),
        ]
    store_readings(url, readings)
    return Seeded(end, gap)


@contextmanager
def database_unreachable(url: str) -> Iterator[None]:
    """Refuse new connections to ``url``'s database and drop the open ones, then restore.

    Works for superusers too (unlike CONNECTION LIMIT), so the dashboard sees a real outage.
    """
    target = make_url(libpq_url(url))
    admin = target.set(database="postgres").render_as_string(hide_password=False)
    name = target.database
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
