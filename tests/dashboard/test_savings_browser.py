"""The Savings page in a real headless Chromium, in both languages, on the synthetic plant of
tests/api/test_savings.py (the dashboard's clock starts at its 28 August 2026; screenshots in
tests/artifacts)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest

from dashboard.i18n import CATALOG
from lingtan.core.site_model import import_site_file
from lingtan.kernel.db import get_engine
from tests.api.test_savings import NOW, SITE_FILE, readings
from tests.conftest import free_port
from tests.dashboard.browser import (
    WALL_SCREEN,
    add_session_cookie,
    chromium_available,
    collect_console_errors,
    dashboard_server,
    save_screenshot,
)
from tests.pipeline import store_readings_once

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs Chromium (apt-get install chromium)"),
]


def _label(key: str, lang: str) -> str:
    return CATALOG[key][0 if lang == "en" else 1]


def test_the_savings_page_in_both_languages(db: str, browser: Browser) -> None:
    with get_engine(db).begin() as conn:
        import_site_file(conn, copy.deepcopy(SITE_FILE))
    store_readings_once(db, "mv-plant", readings)
    env = {"LINGTAN_CLOCK_START": NOW.isoformat(), "LINGTAN_SITE_ID": "mv-plant"}
    with dashboard_server(db, free_port(), env=env) as base:
        for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
            context = browser.new_context(viewport=WALL_SCREEN, locale=locale)
            page = context.new_page()
            add_session_cookie(page, base)
            if lang == "zh":  # the minted session speaks English until the reader switches
                page.goto(base + "/savings")
                page.locator("#lang-switch").click()
                page.locator("#sv-title", has_text="节能量").wait_for(timeout=60_000)
                page.close()  # the switch reloads the page, aborting its requests: no fault
                page = context.new_page()
            errors = collect_console_errors(page)
            page.goto(base + "/savings")
            assert page.locator("#sv-title").text_content() == _label("nav.savings", lang)
            assert page.locator("#nav-savings").inner_text() == _label("nav.savings", lang)
            avoided = page.locator("#sv-avoided")
            avoided.wait_for(timeout=90_000)
            assert "kWh ±" in avoided.inner_text()
            verdict = page.locator("#sv-adequacy").inner_text()
            assert ("Adequate" if lang == "en" else "合格") in verdict
            # 70 daily bars against the adjusted baseline line, drawn by the dashboard's plotly bundle
            bars = page.locator("#sv-actual .barlayer .point")
            bars.first.wait_for(state="visible", timeout=30_000)
            assert bars.count() == 70
            # the cumulative savings with the whole period's error bar, and the CUSUM
            page.locator("#sv-cumulative .errorbar").first.wait_for(state="attached", timeout=30_000)
            page.locator("#sv-cusum .scatterlayer .trace").first.wait_for(state="visible", timeout=30_000)
            page.locator("#sv-enpi .barlayer .point").first.wait_for(state="visible", timeout=30_000)
            assert "0." in page.locator("#sv-enpi-ratio").inner_text()  # below 1: an improvement
            assert "Compressor 1 VFD" in page.locator("#sv-project").inner_text()
            save_screenshot(page, f"dashboard-savings-{lang}.png")
            assert errors == [], (lang, errors)
            context.close()
