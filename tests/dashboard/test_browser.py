"""The Overview in a real headless Chromium, served by `lingtan dashboard` as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from api.services.kpi import site_overview
from lingtan.db import get_engine
from tests.conftest import free_port
from tests.dashboard.browser import (
    WALL_SCREEN,
    chart_traces,
    chromium,
    chromium_available,
    collect_console_errors,
    dashboard_server,
    save_screenshot,
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
    "tile-today-tco2": 0.0005, "tile-green-ratio": 0.05, "tile-intensity": 0.0005,
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_overview_shows_the_kpi_service_numbers(demo_plant: tuple[str, Seeded], browser: Browser) -> None:
    url, _ = demo_plant
    with dashboard_server(url, free_port()) as base:
        page = browser.new_page(viewport=WALL_SCREEN)
        errors = collect_console_errors(page)
        page.goto(base + "/")
        shown = wait_for_tile_numbers(page)
        raw = tile_data_values(page)
        with get_engine(url).connect() as conn:
            overview = site_overview(conn, SITE_ID, datetime.now(UTC))
        expected = {
            "tile-grid-kw": overview.power.grid_kw,
            "tile-pv-kw": overview.power.pv_kw,
            "tile-load-kw": overview.power.load_kw,
            "tile-today-kwh": overview.today.consumption_kwh,
            "tile-today-tco2": overview.today.co2_t,
            "tile-green-ratio": overview.today.green_power_ratio * 100,
            "tile-intensity": overview.today.carbon_intensity_kg_per_kwh,
        }
        for tile_id, value in expected.items():
            assert value is not None, tile_id
            assert shown[tile_id] == pytest.approx(value, abs=DISPLAY_TOLERANCE[tile_id] + 1e-9), tile_id
            assert raw[tile_id] == pytest.approx(value, rel=1e-9), tile_id

        assert page.locator("#site-name").inner_text() == SITE_NAME
        assert page.locator("#status-badge").inner_text().strip().lower() == "live"
        assert "Asia/Shanghai" in page.locator("#as-of").inner_text()
        assert "0.5122" in page.locator("#tile-today-tco2-note").inner_text()
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
        page.goto(base + "/")
        banner = page.locator("#db-banner")
        banner.wait_for(state="visible", timeout=30_000)
        assert "Database unreachable" in banner.inner_text()
        assert page.locator("#tile-grid-kw").inner_text() == "—"
        assert page.locator("#status-badge").inner_text().strip().lower() == "stale"
        wait_for_chart_rendered(page)
        save_screenshot(page, "dashboard-db-unreachable.png")
        assert errors == []
