"""The Overview in a real headless Chromium, served by `lingtan dashboard` as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from lingtan.core.kpi import local_midnight, site_overview, window_kpis
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine
from tests.conftest import free_port
from tests.dashboard.browser import (
    WALL_SCREEN,
    add_session_cookie,
    chart_traces,
    chromium,
    chromium_available,
    collect_console_errors,
    dashboard_server,
    save_screenshot,
    sign_in,
    tile_data_values,
    wait_for_chart_points,
    wait_for_chart_rendered,
    wait_for_refresh,
    wait_for_tile_numbers,
)
from tests.dashboard.seed import SITE_ID, SITE_NAME, Seeded, database_unreachable

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs Chromium (apt-get install chromium)"),
]

# half a unit in the last displayed decimal, plus float noise
DISPLAY_TOLERANCE = {
    "tile-grid-kw": 0.05, "tile-pv-kw": 0.05, "tile-load-kw": 0.05, "tile-today-kwh": 0.05,
    "tile-today-tco2": 0.0005, "tile-today-tce": 0.0005, "tile-green-ratio": 0.05,
    "tile-intensity": 0.0005, "tile-intensity-24h": 0.0005,
}
# Rolling windows end "now": between the page's refresh and this test's own query the window
# slides by a second or two over data that is not changing, which moves a ratio by well under 1 %.
ROLLING = {"tile-intensity", "tile-intensity-24h"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_overview_shows_the_kpi_service_numbers(demo_plant: tuple[str, Seeded], browser: Browser,
                                                dashboard_user: tuple[str, str]) -> None:
    url, seeded = demo_plant
    # the dashboard process lives just after the seeded data, at the site's mid-morning, whatever
    # the hour this runs at; this test's own clock starts there too (a second or two ahead)
    start = seeded.end + timedelta(seconds=5)
    test_clock = clock.starting_at(start)
    with dashboard_server(url, free_port(), env={"LINGTAN_CLOCK_START": start.isoformat()}) as base:
        page = browser.new_page(viewport=WALL_SCREEN)
        errors = collect_console_errors(page)
        sign_in(page, base, *dashboard_user)
        shown = wait_for_tile_numbers(page)
        raw = tile_data_values(page)
        now = test_clock()
        with get_engine(url).connect() as conn:
            # what GET /sites/{id}/kpis answers for the same windows (the route calls window_kpis)
            overview = site_overview(conn, SITE_ID, now)
            today = window_kpis(conn, SITE_ID, local_midnight(now, "Asia/Shanghai"), now, now)
            last_15m = window_kpis(conn, SITE_ID, now - timedelta(minutes=15), now, now)
            last_24h = window_kpis(conn, SITE_ID, now - timedelta(hours=24), now, now)
        expected = {
            "tile-grid-kw": overview.power.grid_kw,
            "tile-pv-kw": overview.power.pv_kw,
            "tile-load-kw": overview.power.load_kw,
            "tile-today-kwh": today.electricity.consumption_kwh.value,
            "tile-today-tco2": today.carbon.scope1_t.value + today.carbon.scope2_location_t.value,
            "tile-today-tce": today.energy.tce_total.value,
            "tile-green-ratio": today.electricity.green_power_ratio.value * 100,
            "tile-intensity": last_15m.carbon.intensity_location_kg_per_kwh.value,
            "tile-intensity-24h": last_24h.carbon.intensity_location_kg_per_kwh.value,
        }
        for tile_id, value in expected.items():
            assert value is not None, tile_id
            if tile_id in ROLLING:
                assert raw[tile_id] == pytest.approx(value, rel=0.01), tile_id
                continue
            assert shown[tile_id] == pytest.approx(value, abs=DISPLAY_TOLERANCE[tile_id] + 1e-9), tile_id
            assert raw[tile_id] == pytest.approx(value, rel=1e-6), tile_id

        assert page.locator("#site-name").inner_text() == SITE_NAME
        assert page.locator("#status-badge").inner_text().strip().lower() == "live"
        assert "Asia/Shanghai" in page.locator("#as-of").inner_text()
        assert "0.5122" in page.locator("#tile-intensity-note").inner_text()
        assert "data coverage" in page.locator("#today-note").inner_text()
        assert not page.locator("#db-banner").is_visible()

        traces = wait_for_chart_points(page)
        assert [t["name"] for t in traces] == ["PV generation", "Grid (import + / export −)", "Site load"]
        for trace in traces:
            assert trace["points"] == 24 * 60  # one per minute, gaps included as nulls
            assert 100 <= trace["values"] < 24 * 60  # ~2 h of data, the rest is gap

        # one more refresh tick: the Patch must leave a 24 h window, not grow or break it
        wait_for_refresh(page)
        after = chart_traces(page)
        assert [t["points"] for t in after] == [24 * 60] * 3
        assert [t["lastX"] for t in after] >= [t["lastX"] for t in traces]
        assert wait_for_tile_numbers(page) == shown

        save_screenshot(page, "dashboard-overview.png")

        # the database goes away: a banner, a stale badge, and the last numbers stay up
        with database_unreachable(url):
            page.locator("#db-banner").wait_for(state="visible", timeout=30_000)
            assert "Database unreachable" in page.locator("#db-banner").inner_text()
            assert page.locator("#status-badge").inner_text().strip().lower() == "stale"
            assert wait_for_tile_numbers(page) == shown
        # and it comes back by itself
        page.locator("#db-banner").wait_for(state="hidden", timeout=30_000)
        assert page.locator("#status-badge").inner_text().strip().lower() == "live"
        assert errors == []


def test_unreachable_database_shows_a_banner(browser: Browser) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/nothing"
    with dashboard_server(unreachable, free_port()) as base:
        page = browser.new_page(viewport=WALL_SCREEN)
        errors = collect_console_errors(page)
        add_session_cookie(page, base)  # no database to sign in against
        page.goto(base + "/")
        banner = page.locator("#db-banner")
        banner.wait_for(state="visible", timeout=30_000)
        assert "Database unreachable" in banner.inner_text()
        assert page.locator("#tile-grid-kw").inner_text() == "—"
        assert page.locator("#status-badge").inner_text().strip().lower() == "stale"
        wait_for_chart_rendered(page)
        save_screenshot(page, "dashboard-db-unreachable.png")
        assert errors == []
