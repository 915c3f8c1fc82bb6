"""The Structure page in a real headless Chromium, in both languages, on the hand-worked plant of
tests/api/test_structure_kpis.py (screenshots in tests/artifacts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from dashboard.i18n import CATALOG
from tests.api.test_accounting import local, seed
from tests.api.test_structure_kpis import ramps, site_file
from tests.conftest import free_port
from tests.dashboard.browser import (
    WALL_SCREEN,
    add_session_cookie,
    chromium,
    chromium_available,
    collect_console_errors,
    dashboard_server,
    save_screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs Chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_the_structure_page_in_both_languages(db: str, browser: Browser) -> None:
    seed(db, site_file(), ramps())
    start = local("2026-03-12T12:00:00")  # the last 7 days hold every reading, whatever the hour now
    env = {"LINGTAN_CLOCK_START": start.isoformat(), "LINGTAN_SITE_ID": "tree"}
    with dashboard_server(db, free_port(), env=env) as base:
        for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
            context = browser.new_context(viewport=WALL_SCREEN, locale=locale)
            page = context.new_page()
            add_session_cookie(page, base)
            if lang == "zh":  # the minted session speaks English until the reader switches
                page.goto(base + "/structure")
                page.locator("#lang-switch").click()
                page.locator("#structure-measure").get_by_text("能耗").wait_for(timeout=60_000)
                page.close()  # the switch reloads the page, aborting its requests: no fault
                page = context.new_page()
            errors = collect_console_errors(page)
            page.goto(base + "/structure")
            page.locator("#ctl-range input[value='7d']").check()
            ranking = page.locator("#structure-rank-ws1")
            # the page drew today first (no readings); the 7-day window brings the plant's night
            ranking.locator("td:nth-child(3)", has_text="702").wait_for(timeout=60_000)
            cells = ranking.locator("td").all_inner_texts()
            assert cells[1] == "Workshop 1" and cells[2].replace(",", "") == "702", cells
            page.locator("#structure-tree .main-svg").first.wait_for(state="visible", timeout=30_000)
            page.locator("#structure-sankey .main-svg").first.wait_for(state="visible", timeout=30_000)
            title = page.locator("#structure-ranking .card-title").inner_text()
            assert title == (CATALOG["structure.ranking.title"][0 if lang == "en" else 1]), title
            unmetered = CATALOG["structure.unmetered"][0 if lang == "en" else 1]
            assert unmetered in page.locator("#structure-sankey").inner_text()
            save_screenshot(page, f"dashboard-structure-{lang}.png")
            assert errors == [], (lang, errors)
            context.close()
