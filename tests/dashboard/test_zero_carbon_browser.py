"""The Zero carbon page in a real headless Chromium, in both languages, on the hand-worked programme of
tests/api/test_programme.py (the dashboard's clock starts at its 10 January 2023; screenshots in
tests/artifacts)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest

from dashboard.i18n import CATALOG
from lingtan.core.site_model import import_site_file
from lingtan.kernel.db import get_engine
from tests.api.test_programme import NOW, SITE_FILE
from tests.conftest import free_port
from tests.dashboard.browser import (
    WALL_SCREEN,
    add_session_cookie,
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


def _label(key: str, lang: str) -> str:
    return CATALOG[key][0 if lang == "en" else 1]


def test_the_zero_carbon_page_in_both_languages(db: str, browser: Browser) -> None:
    with get_engine(db).begin() as conn:
        import_site_file(conn, copy.deepcopy(SITE_FILE))
    env = {"LINGTAN_CLOCK_START": NOW.isoformat(), "LINGTAN_SITE_ID": "zc-plant"}
    with dashboard_server(db, free_port(), env=env) as base:
        for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
            context = browser.new_context(viewport=WALL_SCREEN, locale=locale)
            page = context.new_page()
            add_session_cookie(page, base)
            if lang == "zh":  # the minted session speaks English until the reader switches
                page.goto(base + "/zero-carbon")
                page.locator("#lang-switch").click()
                page.locator("#zc-title", has_text="零碳进程").wait_for(timeout=60_000)
                page.close()  # the switch reloads the page, aborting its requests: no fault
                page = context.new_page()
            errors = collect_console_errors(page)
            page.goto(base + "/zero-carbon")
            assert page.locator("#zc-title").text_content() == _label("nav.zero_carbon", lang)
            assert page.locator("#nav-zero-carbon").inner_text() == _label("nav.zero_carbon", lang)
            badge = page.locator("#zc-status-green-85")
            badge.wait_for(timeout=60_000)
            assert badge.inner_text().strip().casefold() == _label("zc.status.at_risk", lang).casefold()
            assert page.locator("#zc-status-emissions-2023").inner_text().strip().casefold() == \
                _label("zc.status.on_track", lang).casefold()
            # the waterfall is drawn by the dashboard's own plotly bundle (it has the waterfall trace)
            bars = page.locator("#zc-waterfall .waterfalllayer .point")
            bars.first.wait_for(state="visible", timeout=30_000)
            # before instruments, certificates, residual, CCER, forestry sink, net
            assert bars.count() == 6
            net = _label("zc.wf.net", lang)
            assert net in page.locator("#zc-waterfall .xtick").all_text_contents()
            assert "828.1" in (page.locator("#zc-waterfall").text_content() or "")
            # the year selector shows the latest complete year
            assert "2022" in page.locator("#zc-year").inner_text()
            neutral = page.locator("#zc-neutral").inner_text()
            assert ("not carbon-neutral" if lang == "en" else "未实现碳中和") in neutral
            page.locator("#zc-target-green-85 .main-svg").first.wait_for(state="visible", timeout=30_000)
            save_screenshot(page, f"dashboard-zero-carbon-{lang}.png")
            # another year: the waterfall follows the selector
            page.locator("#zc-year").click()
            # Dash's dropdown lists its options in a popover outside the component
            page.locator(".dash-options-list-option-text", has_text="2021").click()
            page.locator("#zc-balance-section .section-title", has_text="2021").wait_for(timeout=30_000)
            page.locator("#zc-waterfall", has_text="4,068.1").wait_for(timeout=30_000)
            assert errors == [], (lang, errors)
            context.close()
