"""Every dashboard page against the running demo stack (`lingtan demo`) in headless Chromium:
each loads without a browser console error in both languages, the language switch changes every
label, tiles equal what the API answers, and a viewer sees no edit control. Screenshots of each
page are written to tests/artifacts/."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboard.i18n import CATALOG
from lingtan.kernel import clock
from tests.dashboard.browser import (
    WALL_SCREEN,
    chromium,
    chromium_available,
    collect_console_errors,
    save_screenshot,
    sign_in,
    tile_data_values,
    wait_for_tile_numbers,
)
from tests.e2e.test_demo import ROOT, Demo, database_url, get_json, printed_key, printed_user, start_demo

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs Chromium (apt-get install chromium)"),
]

VIEWER = ("wall.screen", "viewer password 1")
# what each page shows once its data has arrived
READY = {
    "/": "#tile-today-kwh[data-value]:not([data-value=''])",
    "/air": "#air-body .card",
    "/heat": "#heat-body .card",
    "/structure": "#structure-body .card, #structure-none",
    "/zero-carbon": "#zc-body .card",
    "/savings": "#sv-body .card",
    "/meters": "#meters-table",
    "/reports": "#reports-body table",
    "/alerts": "#alerts-body h2",
}


@dataclass
class Stack:
    demo: Demo
    dashboard: str
    api: str
    key: str
    engineer: tuple[str, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tests.conftest import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGTAN_")}
    env.update({
        "LINGTAN_DATA_DIR": str(tmp_path_factory.mktemp("demo-pages")),
        **{name: str(free_port()) for name in ("LINGTAN_API_PORT", "LINGTAN_DASHBOARD_PORT",
                                               "LINGTAN_SIM_MODBUS_PORT", "LINGTAN_EMBEDDED_MQTT_PORT",
                                               "LINGTAN_GATEWAY_METRICS_PORT")},
    })
    demo = start_demo(env)
    try:
        demo.wait_ready(timeout=120)
        text = "".join(demo.output)
        created = subprocess.run(
            [sys.executable, "-m", "lingtan.cli", "users", "create", VIEWER[0], "--role", "viewer",
             "--password-stdin"], input=VIEWER[1] + "\n", text=True, capture_output=True, cwd=ROOT,
            env={**env, "LINGTAN_DATABASE_URL": database_url(env["LINGTAN_DATA_DIR"])}, timeout=60)
        assert created.returncode == 0, created.stdout + created.stderr
        yield Stack(demo, f"http://127.0.0.1:{env['LINGTAN_DASHBOARD_PORT']}",
                    f"http://127.0.0.1:{env['LINGTAN_API_PORT']}/api/v1", printed_key(text),
                    printed_user(text))
    finally:
        assert demo.ctrl_c() == 0, "".join(demo.output)


def _visible_texts(page) -> list[str]:
    return page.evaluate("""() => {
        const out = [];
        const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walk.nextNode()) {
            const el = walk.currentNode.parentElement;
            const text = walk.currentNode.textContent.trim();
            if (text && el && el.offsetParent !== null && !el.closest('.js-plotly-plot')) out.push(text);
        }
        return out;
    }""")


def test_every_page_in_both_languages_without_console_errors(stack: Stack) -> None:
    english_only = {en for key, (en, zh) in CATALOG.items() if en != zh and key != "product"}
    with chromium() as browser:
        for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
            context = browser.new_context(viewport=WALL_SCREEN, locale=locale)
            sign_in(context.new_page(), stack.dashboard, *stack.engineer)
            for path, ready in READY.items():
                # a page per path: leaving a page aborts its in-flight requests, which is no error
                page = context.new_page()
                errors = collect_console_errors(page)
                page.goto(stack.dashboard + path)
                page.locator(ready).first.wait_for(timeout=60_000)
                texts = _visible_texts(page)
                if lang == "zh":
                    # the page speaks Chinese: no English catalog label is left anywhere visible
                    switch = CATALOG["lang.switch"][1]
                    assert not [s for s in texts if s in english_only and s != switch], path
                name = path.strip("/") or "overview"
                save_screenshot(page, f"dashboard-{name}-{lang}.png")
                assert errors == [], (lang, path, errors)
            context.close()


def test_language_switch_changes_every_label(stack: Stack) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=WALL_SCREEN, locale="en-US")
        sign_in(page, stack.dashboard, *stack.engineer)
        page.goto(stack.dashboard + "/")
        wait_for_tile_numbers(page, timeout_ms=60_000)
        before = set(_visible_texts(page))
        labels_en = {en for key, (en, zh) in CATALOG.items() if en != zh and key != "product"} & before
        assert len(labels_en) >= 15, labels_en  # the Overview shows many catalog labels
        page.locator("#lang-switch").click()
        page.locator("#tile-today-kwh[data-value]:not([data-value=''])").wait_for(timeout=60_000)
        after = set(_visible_texts(page))
        assert not labels_en & after, labels_en & after
        zh = {zh for key, (en, zh) in CATALOG.items() if en != zh and key != "product"}
        assert len(zh & after) >= len(labels_en) - 2  # the same labels, now in Chinese
        # the choice is remembered: a new visit stays in Chinese whatever the browser says
        page.goto(stack.dashboard + "/meters")
        page.locator("#meters-table").wait_for(timeout=60_000)
        assert CATALOG["nav.meters"][1] in _visible_texts(page)


def test_overview_tiles_equal_the_api(stack: Stack) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=WALL_SCREEN, locale="en-US")
        sign_in(page, stack.dashboard, *stack.engineer)
        page.goto(stack.dashboard + "/")
        wait_for_tile_numbers(page, timeout_ms=60_000)
        # "today" is the site's calendar day (Shanghai), not the machine's; should the site's
        # midnight fall between reading the tiles and asking the API, read both again
        for _ in range(2):
            day = clock.site_today("Asia/Shanghai")
            shown = tile_data_values(page)
            api = get_json(f"{stack.api}/sites/demo-plant/kpis?period=day&date={day.isoformat()}", stack.key)
            if clock.site_today("Asia/Shanghai") == day:
                break
            page.wait_for_timeout(12_000)  # two 5 s refreshes: the tiles move on to the new day
    # the plant is live: between the tile's refresh and this request a few seconds of energy are
    # added (a few kWh on a day of thousands), so the totals agree to 0.5 %
    assert shown["tile-today-kwh"] == pytest.approx(api["electricity"]["consumption_kwh"]["value"], rel=5e-3)
    assert shown["tile-today-tce"] == pytest.approx(api["energy"]["tce_total"]["value"], rel=5e-3)
    carbon = api["carbon"]["scope1_t"]["value"] + api["carbon"]["scope2_location_t"]["value"]
    assert shown["tile-today-tco2"] == pytest.approx(carbon, rel=5e-3)
    assert shown["tile-green-ratio"] == pytest.approx(api["electricity"]["green_power_ratio"]["value"] * 100,
                                                      rel=5e-3)


def test_a_viewer_sees_no_edit_controls(stack: Stack) -> None:
    with chromium() as browser:
        for who, can_edit in ((VIEWER, False), (stack.engineer, True)):
            page = browser.new_page(viewport=WALL_SCREEN, locale="en-US")
            sign_in(page, stack.dashboard, *who)
            page.goto(stack.dashboard + "/meters")
            page.locator("#meters-table").wait_for(timeout=60_000)
            assert (page.locator(".role-edit").count() > 0) == can_edit, who[0]
            assert page.locator("#meters-table tbody tr").count() >= 6
            # drawing the table (and redrawing it on refresh) changes nothing and says nothing
            page.wait_for_timeout(2_000)
            assert page.locator("#meters-notice").inner_text().strip() == "", who[0]
            page.close()


def test_reports_download_csv_and_xlsx(stack: Stack) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport=WALL_SCREEN, locale="en-US", accept_downloads=True)
        page = context.new_page()
        sign_in(page, stack.dashboard, *stack.engineer)
        page.goto(stack.dashboard + "/reports")
        page.locator(READY["/reports"]).first.wait_for(timeout=60_000)
        # CSV: UTF-8 with a byte-order mark (Excel); XLSX: a zip archive
        for button, suffix, magic in (("#report-csv", ".csv", b"\xef\xbb\xbf"),
                                      ("#report-xlsx", ".xlsx", b"PK")):
            with page.expect_download(timeout=60_000) as info:
                page.locator(button).click()
            download = info.value
            assert download.suggested_filename.startswith("demo-plant-ghg-inventory-")
            assert download.suggested_filename.endswith(suffix)
            body = Path(download.path()).read_bytes()
            assert body.startswith(magic) and len(body) > 200
        context.close()
