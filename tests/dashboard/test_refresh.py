"""The refresh every page goes through, on the Overview against a real database: its figures, the
chart's patches, the statements a tick sends, and the failure path (the banner)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from dash import Patch, no_update
from sqlalchemy import event

from dashboard.chart import (
    FULL_RELOAD_EVERY,
    TRACES,
    WINDOW_MINUTES,
    ChartPoints,
    densify,
    empty_figure,
    window,
)
from dashboard.controls import Basis, view_of
from dashboard.data import Reader, make_reader
from dashboard.formatting import local_time
from dashboard.page import PageQuery
from dashboard.pages import BY_PATH
from dashboard.refresh import ordered, output_keys, refresh
from dashboard.snapshot import load_snapshot
from gateway.sinks.postgres import PostgresSink
from lingtan.core.kpi import local_midnight, power_series, site_overview, window_kpis
from lingtan.core.site_model import import_site_file
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.dashboard.seed import (
    GRID_METER,
    PV_METER,
    SITE_ID,
    SITE_NAME,
    Seeded,
    database_unreachable,
    seed_demo_plant,
)
from tests.pipeline import refresh_rollups, store_readings

ROOT = Path(__file__).resolve().parents[2]
OVERVIEW = BY_PATH["/"]
OUTPUTS = output_keys(OVERVIEW)


def overview_tick(read: Reader, state: dict[str, Any] | None, now: datetime, basis: Basis = "location",
             site: str = SITE_ID, timezone: str | None = None) -> dict[tuple[str, str], Any]:
    """One refresh of the Overview, as its callback makes it."""
    q = PageQuery(view_of(site, None, basis, None, None, site), now, state=state)
    return refresh(OVERVIEW, read, q, "en", timezone)


def apply_patch(target: dict[str, Any], patch: Patch) -> dict[str, Any]:
    """The renderer's Assign/Extend/Delete, enough to check what the browser ends up with."""
    out = copy.deepcopy(target)
    for op in patch.to_plotly_json()["operations"]:
        *parents, last = op["location"]
        node: Any = out
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        if op["operation"] == "Assign":
            node[last] = copy.deepcopy(op["params"]["value"])  # JSON never shares lists
        elif op["operation"] == "Extend":
            node[last] = list(node[last]) + list(op["params"]["value"])
        elif op["operation"] == "Delete":
            del node[last]
        else:
            raise AssertionError(f"unexpected patch operation {op['operation']}")
    return out


def test_refresh_matches_kpi_service(demo_plant: tuple[str, Seeded]) -> None:
    url, seeded = demo_plant
    now = seeded.end + timedelta(seconds=5)
    out = overview_tick(make_reader(url), None, now)
    market = overview_tick(make_reader(url), None, now, basis="market")
    with get_engine(url).connect() as conn:
        overview = site_overview(conn, SITE_ID, now)
        today = window_kpis(conn, SITE_ID, local_midnight(now, "Asia/Shanghai"), now, now)
        last_15m = window_kpis(conn, SITE_ID, now - timedelta(minutes=15), now, now)
        last_24h = window_kpis(conn, SITE_ID, now - timedelta(hours=24), now, now)
    assert out[("site-name", "children")] == SITE_NAME
    assert out[("status-badge", "children")] == "live"
    assert out[("db-banner", "className")] == "banner hidden"
    assert float(out[("tile-grid-kw", "data-value")]) == pytest.approx(overview.power.grid_kw)
    assert float(out[("tile-pv-kw", "data-value")]) == pytest.approx(overview.power.pv_kw)
    # the tiles are the KPI engine's figures, as GET /sites/{id}/kpis gives them for the same window
    c = today.carbon
    assert float(out[("tile-today-kwh", "data-value")]) == pytest.approx(
        today.electricity.consumption_kwh.value)
    assert float(out[("tile-today-tco2", "data-value")]) == pytest.approx(
        c.scope1_t.value + c.scope2_location_t.value)
    assert float(market[("tile-today-tco2", "data-value")]) == pytest.approx(
        c.scope1_t.value + c.scope2_market_t.value)
    assert float(out[("tile-today-tce", "data-value")]) == pytest.approx(today.energy.tce_total.value)
    assert float(out[("tile-green-ratio", "data-value")]) == pytest.approx(
        today.electricity.green_power_ratio.value * 100)
    assert float(out[("tile-intensity", "data-value")]) == pytest.approx(
        last_15m.carbon.intensity_location_kg_per_kwh.value)
    assert float(out[("tile-intensity-24h", "data-value")]) == pytest.approx(
        last_24h.carbon.intensity_location_kg_per_kwh.value)
    # GET /kpis/now's "today" is the same KPI window
    assert overview.today == today
    assert "data coverage" in out[("today-note", "children")]  # 2 h of data in a longer day
    assert out[("site-tz", "data")] == "Asia/Shanghai"
    assert len(ordered(OUTPUTS, out)) == len(OUTPUTS)


def test_today_starts_at_the_sites_midnight_not_utcs(db: str) -> None:
    # 00:30 on 16 June in Shanghai is 16:30 on 15 June in UTC: the site's "today" has 30 minutes
    # (all of them with data), the UTC day would have all 2 seeded hours
    seeded = seed_demo_plant(db, end=datetime(2026, 6, 15, 16, 30, tzinfo=UTC), gap_minutes=0)
    now = seeded.end + timedelta(seconds=5)
    out = overview_tick(make_reader(db), None, now)
    with get_engine(db).connect() as conn:
        site_day = window_kpis(conn, SITE_ID, datetime(2026, 6, 15, 16, tzinfo=UTC), now, now)
        utc_day = window_kpis(conn, SITE_ID, datetime(2026, 6, 15, tzinfo=UTC), now, now)
    shown = float(out[("tile-today-kwh", "data-value")])
    assert shown == pytest.approx(site_day.electricity.consumption_kwh.value)
    assert shown < 0.3 * utc_day.electricity.consumption_kwh.value
    # the note's coverage is the site day's (nearly all of its half hour), not the UTC day's (2 h of 16.5)
    coverage = site_day.electricity.consumption_kwh.coverage
    assert coverage > 0.95 > 0.2 > utc_day.electricity.consumption_kwh.coverage
    assert f"data coverage {coverage * 100:.1f} %" in out[("today-note", "children")]


def _operations(patch: Patch) -> set[str]:
    return {op["operation"] for op in patch.to_plotly_json()["operations"] if op["location"][0] == "data"}


def _full_chart(url: str, now: datetime) -> ChartPoints:
    first, last = window(now)
    with get_engine(url).connect() as conn:
        series = power_series(conn, SITE_ID, first, last + timedelta(minutes=1))
    return densify(series, first, last, "Asia/Shanghai")


def _assert_figure_is(figure: dict[str, Any], full: ChartPoints) -> None:
    for i, (attr, _, _) in enumerate(TRACES):
        assert len(figure["data"][i]["x"]) == WINDOW_MINUTES
        assert figure["data"][i]["x"] == full.x
        assert figure["data"][i]["y"] == full.y[attr]


def test_chart_patch_stays_equal_to_a_full_reload(demo_plant: tuple[str, Seeded]) -> None:
    url, seeded = demo_plant
    read = make_reader(url)
    figure = empty_figure().to_plotly_json()
    now = seeded.end + timedelta(seconds=5)
    out = overview_tick(read, None, now)
    assert _operations(out[("power-chart", "figure")]) == {"Assign"}
    figure = apply_patch(figure, out[("power-chart", "figure")])
    state = out[("chart-state", "data")]
    # incremental ticks: same minute, the next minutes, a few minutes' jump (a slow tab)
    for step in (5, 60, 120, 240):
        now += timedelta(seconds=step)
        out = overview_tick(read, state, now)
        assert _operations(out[("power-chart", "figure")]) == {"Delete", "Extend"}
        figure = apply_patch(figure, out[("power-chart", "figure")])
        state = out[("chart-state", "data")]
    _assert_figure_is(figure, _full_chart(url, now))

    # the outage is a gap (None), not a run of zeros
    full = _full_chart(url, now)
    idx = full.x.index(local_time(seeded.gap[0] + timedelta(minutes=2), "Asia/Shanghai", "%Y-%m-%d %H:%M"))
    assert all(full.y[attr][idx] is None for attr, _, _ in TRACES)
    assert figure["data"][0]["y"][idx - 10] is not None

    # late data (a gateway replaying its buffer) lands in the gap; the periodic full reload shows it
    late = seeded.gap[0] + timedelta(minutes=2, seconds=10)
    sink = PostgresSink(url)
    try:
        sink.write([Reading(late, GRID_METER, "active_power", 400.0),
                    Reading(late, PV_METER, "active_power", 100.0)])
    finally:
        sink.close()
    refresh_rollups(url)
    now += timedelta(seconds=FULL_RELOAD_EVERY.total_seconds())
    out = overview_tick(read, state, now)
    assert _operations(out[("power-chart", "figure")]) == {"Assign"}
    figure = apply_patch(figure, out[("power-chart", "figure")])
    _assert_figure_is(figure, _full_chart(url, now))
    idx = figure["data"][0]["x"].index(local_time(late, "Asia/Shanghai", "%Y-%m-%d %H:%M"))
    assert figure["data"][0]["y"][idx] == 100.0
    assert figure["data"][2]["y"][idx] == 500.0


def test_database_outage_mid_session(demo_plant: tuple[str, Seeded]) -> None:
    url, seeded = demo_plant
    read = make_reader(url)
    now = seeded.end + timedelta(seconds=5)
    first = overview_tick(read, None, now)
    with database_unreachable(url):
        out = overview_tick(read, first[("chart-state", "data")], now + timedelta(seconds=5),
                       timezone=first[("site-tz", "data")])
    assert "Database unreachable" in out[("db-banner", "children")]
    # the page knows its site's zone from the last refresh: the banner tells the site's time
    checked = local_time(now + timedelta(seconds=5), "Asia/Shanghai", "%H:%M:%S")
    assert checked in out[("db-banner", "children")]
    assert (("tile-grid-kw", "children")) not in out  # no_update: the browser keeps the last value
    # and it recovers on the next tick once the database is back
    back = overview_tick(read, first[("chart-state", "data")], now + timedelta(seconds=10))
    assert back[("db-banner", "className")] == "banner hidden"
    assert back[("tile-grid-kw", "children")] == first[("tile-grid-kw", "children")]


def test_database_unreachable_keeps_last_values() -> None:
    out = overview_tick(make_reader("postgresql://nobody@127.0.0.1:1/nothing"), None, datetime.now(UTC))
    assert set(out) == {("status-badge", "children"), ("status-badge", "className"),
                        ("db-banner", "children"), ("db-banner", "className")}
    assert "Database unreachable" in out[("db-banner", "children")]
    assert out[("db-banner", "className")] == "banner"
    values = dict(zip(OUTPUTS, ordered(OUTPUTS, out), strict=True))
    assert values[("tile-grid-kw", "children")] is no_update
    assert values[("power-chart", "figure")] is no_update


def test_unknown_site_is_a_banner(db: str) -> None:
    out = overview_tick(make_reader(db), None, datetime.now(UTC), site="no-such-site")
    assert "Site not found" in out[("db-banner", "children")]


def test_missing_database_url_is_a_banner() -> None:
    out = overview_tick(make_reader(None), None, datetime.now(UTC))
    assert "LINGTAN_DATABASE_URL" in out[("db-banner", "children")]


def test_query_error_is_a_banner() -> None:
    def read(*_: object) -> Any:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    out = overview_tick(read, None, datetime.now(UTC))
    assert out[("status-badge", "children")] == "stale"


# Statements one refresh may send, whatever the site's number of meters, windows' figures or
# green purchases: the site model (4), the meters' newest power, which meters report export and
# steam, one batch of counters for every window, one of compressor air, the three windows' grid
# import by minute of the day (time-of-use cost), the activity entries, the chart's minutes, the
# intensity series (cache, its open hour) and the pool's liveness check: 14 per tick on the whole
# demo plant below (16 on a first load, which also fills the series cache). Before the tiles
# shared their reads, the same tick sent 145.
MAX_STATEMENTS_PER_REFRESH = 20


@contextmanager
def statements_sent(url: str) -> Iterator[list[str]]:
    """Every statement sent on the engine's connections, counted in the driver: the series cache
    reads through a raw psycopg cursor, which SQLAlchemy's cursor events do not see."""
    sent: list[str] = []

    class Counting(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            sent.append(" ".join(str(query).split()))
            return super().execute(query, params, **kw)

    def counting(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.cursor_factory = Counting

    engine = get_engine(url)
    engine.dispose()  # connections made from here on count
    event.listen(engine, "connect", counting)
    try:
        yield sent
    finally:
        event.remove(engine, "connect", counting)
        engine.dispose()


def seed_whole_plant(url: str, end: datetime) -> None:
    """The demo plant's grid and PV readings, and the rest of deploy/site-demo-plant.yaml:
    compressors, boiler, heat recovery and production line with two hours of counters, and two
    green-power purchases for November 2026 — so a refresh asks for every kind of counter read."""
    seed_demo_plant(url, end=end)
    site = yaml.safe_load((ROOT / "deploy" / "site-demo-plant.yaml").read_text())
    named = {"grid-incomer": GRID_METER, "pv-inverter": PV_METER}  # the seeded meters' ids
    site["meters"] = [{**m, "id": named.get(m["id"], m["id"])} for m in site["meters"]]
    for node in site["structure"]["nodes"]:
        node["meters"] = [{**m, "meter": named.get(m["meter"], m["meter"])} for m in node.get("meters", [])]
    with get_engine(url).begin() as conn:
        import_site_file(conn, site)
    rates = {  # per hour: a steadily running plant
        ("compressor-1", "active_energy_import"): 60.0, ("compressor-1", "running_hours"): 1.0,
        ("compressor-1", "loaded_hours"): 0.75, ("compressor-2", "active_energy_import"): 30.0,
        ("compressor-2", "running_hours"): 1.0, ("compressor-2", "loaded_hours"): 0.5,
        ("boiler", "gas_volume"): 120.0, ("boiler", "steam_mass"): 1.5,
        ("heat-recovery", "heat_energy"): 0.2, ("line-1", "production_count"): 300.0,
    }
    store_readings(url, [Reading(end - timedelta(minutes=i), meter, quantity, 1_000.0 + rate * (120 - i) / 60)
                         for i in range(121) for (meter, quantity), rate in rates.items()])


def test_a_refresh_shares_its_reads_and_keeps_the_kpi_engines_figures(db: str) -> None:
    end = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Shenyang, inside November's purchases
    seed_whole_plant(db, end)
    read = make_reader(db)
    now = end + timedelta(seconds=5)
    with statements_sent(db) as sent:
        full = overview_tick(read, None, now)
        on_full = list(sent)
        sent.clear()
        tick = overview_tick(read, full[("chart-state", "data")], now + timedelta(seconds=5))
        on_tick = list(sent)
    assert full[("db-banner", "className")] == "banner hidden"
    assert len(on_full) <= MAX_STATEMENTS_PER_REFRESH, "\n".join(on_full)
    assert len(on_tick) <= MAX_STATEMENTS_PER_REFRESH, "\n".join(on_tick)
    assert sum("FROM sites" in s for s in on_tick) == 1  # the site row, once per refresh

    # the tiles are the KPI engine's figures for each window computed on its own
    at = now + timedelta(seconds=5)
    with get_engine(db).connect() as conn:
        today = window_kpis(conn, SITE_ID, local_midnight(at, "Asia/Shanghai"), at, at)
        last_15m = window_kpis(conn, SITE_ID, at - timedelta(minutes=15), at, at)
        last_24h = window_kpis(conn, SITE_ID, at - timedelta(hours=24), at, at)
        overview = site_overview(conn, SITE_ID, at)
    assert today.electricity.green_trade_kwh.value > 0  # the purchases took part
    assert float(tick[("tile-today-kwh", "data-value")]) == pytest.approx(
        today.electricity.consumption_kwh.value)
    assert float(tick[("tile-today-tco2", "data-value")]) == pytest.approx(
        today.carbon.scope1_t.value + today.carbon.scope2_location_t.value)
    assert float(tick[("tile-today-tce", "data-value")]) == pytest.approx(today.energy.tce_total.value)
    assert float(tick[("tile-green-ratio", "data-value")]) == pytest.approx(
        today.electricity.green_power_ratio.value * 100)
    assert float(tick[("tile-intensity", "data-value")]) == pytest.approx(
        last_15m.carbon.intensity_location_kg_per_kwh.value)
    assert float(tick[("tile-intensity-24h", "data-value")]) == pytest.approx(
        last_24h.carbon.intensity_location_kg_per_kwh.value)
    assert overview.today == today
    # every figure, note and factor of the shared path is the one window_kpis gives window by window
    with get_engine(db).connect() as conn:
        snap = load_snapshot(conn, SITE_ID, at, at - timedelta(hours=1), at)
    assert (snap.today, snap.last_15m, snap.last_24h) == (today, last_15m, last_24h)
    assert snap.overview == overview
    assert float(tick[("tile-grid-kw", "data-value")]) == pytest.approx(overview.power.grid_kw)
    assert today.carbon.scope1_t.value > 0 and today.boilers[0].steam_t is not None
    assert [c.meter_id for c in today.compressors] == ["compressor-1", "compressor-2"]
