"""Reusable helpers for real-browser tests of the dashboard (also used by the demo's e2e test).

Playwright cannot download its own browser on an offline machine, so it drives Debian's
Chromium (`apt-get install chromium`) through ``executable_path``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard.tiles import TILE_IDS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("LINGTAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",  # offline machine: no update or safe-browsing calls
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
WALL_SCREEN = {"width": 1920, "height": 1080}
# The session key of dashboards started by these helpers, so a test can mint a signed-in cookie
# where it cannot sign in through the form (the dashboard's database is deliberately unreachable).
TEST_DASHBOARD_SECRET = "test-only-dashboard-secret-0123456789"
_NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$")


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium (playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def collect_console_errors(page: Page) -> list[str]:
    """A list that fills with console errors, uncaught page errors and failed requests."""
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def on_request_failed(req: Request) -> None:
        errors.append(f"requestfailed: {req.url} {req.failure}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("requestfailed", on_request_failed)
    return errors


def sign_in(page: Page, base: str, username: str, password: str, timeout_ms: int = 30_000) -> None:
    """Sign in through the dashboard's /login form, as a person would, and land on the page."""
    page.goto(base + "/")  # the guard sends an anonymous browser to the sign-in form
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url(lambda url: "/login" not in url, timeout=timeout_ms)


def minted_session(role: str = "viewer", user: str = "tester", secret: str = TEST_DASHBOARD_SECRET
                   ) -> tuple[str, str, str]:
    """(cookie name, cookie value, CSRF token) of a signed-in session, signed with ``secret`` as the
    dashboard does: Flask-Login's user id, the facts the dashboard keeps beside it and Flask-WTF's
    CSRF token (what a callback POST sends as X-CSRFToken). User 0 exists in no database, so the
    session lasts only while the dashboard cannot re-check it (a minute, or an outage)."""
    import time

    import flask
    from flask_wtf.csrf import generate_csrf

    from dashboard.access import COOKIE_NAME, Identity, session_facts

    app = flask.Flask(__name__)
    app.secret_key = secret
    ident = Identity(role=role, user=user, user_id=0, language="en")
    with app.test_request_context():
        flask.session.update({"_user_id": ident.get_id(), **session_facts(ident, time.time())})
        token = generate_csrf()
        data = dict(flask.session)
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer is not None
    return COOKIE_NAME, serializer.dumps(data), token


def session_cookie(role: str = "viewer", user: str = "tester", secret: str = TEST_DASHBOARD_SECRET
                   ) -> tuple[str, str]:
    """(name, value) of a signed-in session cookie (see ``minted_session``)."""
    name, value, _ = minted_session(role, user, secret)
    return name, value


def add_session_cookie(page: Page, base: str, role: str = "viewer") -> None:
    """Give the page's browser context a signed-in session for the dashboard at ``base``."""
    name, value = session_cookie(role)
    page.context.add_cookies([{"name": name, "value": value, "url": base}])


def wait_for_refresh(page: Page, timeout_ms: int = 30_000) -> None:
    """Wait for the next answered refresh callback (one per interval tick) to be applied."""
    with page.expect_response(lambda r: "/_dash-update-component" in r.url and r.ok, timeout=timeout_ms):
        pass
    # the response is in; give the renderer a moment to apply it to the DOM
    page.wait_for_timeout(300)


def parse_number(text: str) -> float:
    """A tile's text ("1,234.5", "-35.2") as a float; raises ValueError on "—" or junk."""
    text = text.strip()
    if not _NUMBER.match(text):
        raise ValueError(f"not a formatted number: {text!r}")
    return float(text.replace(",", ""))


def tile_texts(page: Page, tile_ids: Sequence[str] = TILE_IDS) -> dict[str, str]:
    return {tid: page.locator(f"#{tid}").inner_text() for tid in tile_ids}


def tile_data_values(page: Page, tile_ids: Sequence[str] = TILE_IDS) -> dict[str, float | None]:
    """The unrounded ``data-value`` of each tile (None where the tile shows no value)."""
    out: dict[str, float | None] = {}
    for tid in tile_ids:
        raw = page.locator(f"#{tid}").get_attribute("data-value")
        out[tid] = float(raw) if raw else None
    return out


def wait_for_tile_numbers(page: Page, tile_ids: Sequence[str] = TILE_IDS, timeout_ms: int = 30_000
                          ) -> dict[str, float]:
    """Wait until every tile shows a number, then return them parsed."""
    page.wait_for_function(
        """([ids, pattern]) => ids.every(id => {
               const el = document.getElementById(id);
               return el && new RegExp(pattern).test(el.textContent.trim());
           })""",
        arg=[list(tile_ids), _NUMBER.pattern],
        timeout=timeout_ms,
    )
    return {tid: parse_number(text) for tid, text in tile_texts(page, tile_ids).items()}


def chart_traces(page: Page, chart_id: str = "power-chart") -> list[dict]:
    """Per trace of the plotly chart: name, number of x points and of non-null y points."""
    return page.evaluate(
        """(id) => {
               const gd = document.getElementById(id)?.querySelector('.js-plotly-plot');
               return (gd && gd.data || []).map(t => ({
                   name: t.name, points: (t.x || []).length,
                   values: (t.y || []).filter(v => v !== null && v !== undefined).length,
                   lastX: (t.x || []).at(-1) ?? null}));
           }""",
        chart_id,
    )


def wait_for_chart_points(page: Page, chart_id: str = "power-chart", timeout_ms: int = 30_000) -> list[dict]:
    page.wait_for_function(
        """(id) => {
               const gd = document.getElementById(id)?.querySelector('.js-plotly-plot');
               return gd && gd.data && gd.data.length > 0
                   && gd.data.every(t => (t.y || []).some(v => v !== null && v !== undefined));
           }""",
        arg=chart_id,
        timeout=timeout_ms,
    )
    return chart_traces(page, chart_id)


def wait_for_chart_rendered(page: Page, chart_id: str = "power-chart", timeout_ms: int = 30_000) -> None:
    """Wait until plotly has drawn the chart (its bundle loads lazily, after the first paint)."""
    page.locator(f"#{chart_id} .main-svg").first.wait_for(state="visible", timeout=timeout_ms)


def save_screenshot(page: Page, name: str = "dashboard-overview.png") -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_for_http(url: str, timeout_s: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Poll until ``url`` answers 200; fail early if ``proc`` dies meanwhile."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s} s (last error: {last})")


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
    return proc.returncode


@contextmanager
def dashboard_server(database_url: str, port: int, env: Mapping[str, str] | None = None
                     ) -> Iterator[str]:
    """`lingtan dashboard` as a subprocess; yields its base URL and stops it afterwards.

    Its log goes to a temporary file (a pipe nobody reads would block it) and is attached
    to the error if it fails to start.
    """
    child_env = {**os.environ, "LINGTAN_DATABASE_URL": database_url,
                 "LINGTAN_DASHBOARD_HOST": "127.0.0.1", "LINGTAN_DASHBOARD_PORT": str(port),
                 "LINGTAN_LOG_FORMAT": "text", "LINGTAN_DASHBOARD_SECRET": TEST_DASHBOARD_SECRET,
                 **(env or {})}
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "lingtan.cli", "dashboard"], cwd=ROOT,
                                env=child_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_http(base + "/", proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                log.seek(0)
                raise RuntimeError(f"{exc}\n--- dashboard log ---\n{log.read()}") from None
            yield base
        finally:
            stop_process(proc)
