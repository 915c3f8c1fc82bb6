"""The served app: honest 404s, nothing fetched from the internet, the contract ids present."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from dashboard.access import CSRF_COOKIE
from dashboard.app import create_asgi_app
from dashboard.tiles import TILE_IDS
from lingtan.kernel.settings import get_settings
from tests.dashboard.browser import TEST_DASHBOARD_SECRET, session_cookie

Get = Callable[[str], httpx.Response]
Post = Callable[[str, dict], httpx.Response]


@pytest.fixture
def get(monkeypatch: pytest.MonkeyPatch) -> Iterator[Get]:
    """GET through the ASGI app exactly as uvicorn serves it."""
    monkeypatch.setenv("LINGTAN_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    monkeypatch.setenv("LINGTAN_DASHBOARD_SECRET", TEST_DASHBOARD_SECRET)
    get_settings.cache_clear()
    app = create_asgi_app()
    signed_in = dict([session_cookie()])  # no database to sign in against

    async def fetch(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard",
                                     cookies=signed_in) as client:
            return await client.get(path, headers=headers)

    try:
        yield lambda path, headers=None: asyncio.run(fetch(path, headers))  # type: ignore[misc]
    finally:
        get_settings.cache_clear()


@pytest.fixture
def post(get: Get) -> Post:
    """POST through the same app (a Dash callback request, as the browser sends it: after loading
    the page, with the CSRF token the page's cookie holds)."""
    app = create_asgi_app()
    name, value = session_cookie()

    async def send(path: str, body: dict) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        # a host name with a dot: the cookie jar then keeps what the page sets under the same name
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.test") as client:
            client.cookies.set(name, value, domain="dashboard.test")
            await client.get("/")
            return await client.post(path, json=body, headers={"X-CSRFToken": client.cookies[CSRF_COOKIE]})

    return lambda path, body: asyncio.run(send(path, body))


def test_index_serves_only_local_resources(get: Get) -> None:
    page = get("/")
    assert page.status_code == 200
    assert "Lingtan" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls, "expected script and stylesheet tags"
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert any("style.css" in u for u in urls)
    # the renderer reads the dashboard's CSRF cookie (and sends it as X-CSRFToken with callbacks)
    config = json.loads(re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>',
                                  page.text, re.S).group(1))
    assert (config["csrf_token_name"], config["csrf_header_name"]) == (CSRF_COOKIE, "X-CSRFToken")


def test_unknown_path_is_404(get: Get) -> None:
    assert get("/no/such/page").status_code == 404
    assert get("/api/v1/sites").status_code == 404
    assert get("/assets/no-such.css").status_code == 404
    assert get("/assets/style.css").status_code == 200


def test_layout_has_contract_ids(get: Get, post: Post) -> None:
    layout = json.dumps(get("/_dash-layout").json())
    for frame_id in ("url", "lang", "page-content"):
        assert f'"id": "{frame_id}"' in layout
    # the router fills the frame with the Overview on "/", with the ids scripts rely on
    answer = post("/_dash-update-component", {
        "output": "..page-content.children...rendered-path.data..",
        "outputs": [{"id": "page-content", "property": "children"},
                    {"id": "rendered-path", "property": "data"}],
        "inputs": [{"id": "url", "property": "pathname", "value": "/"}],
        "state": [{"id": "lang", "property": "data", "value": "en"},
                  {"id": "refresh-ms", "property": "data", "value": 5000},
                  {"id": "rendered-path", "property": "data", "value": None}],
        "changedPropIds": ["url.pathname"],
    })
    assert answer.status_code == 200, answer.text
    page = json.dumps(answer.json())
    for tile_id in (*TILE_IDS, "power-chart", "status-badge", "lang-switch"):
        assert f'"id": "{tile_id}"' in page


@pytest.mark.parametrize("path", ["/", "/air", "/heat", "/structure", "/zero-carbon", "/savings", "/meters",
                                  "/reports", "/alerts"])
def test_every_page_path_serves_the_app(get: Get, path: str) -> None:
    page = get(path)
    assert page.status_code == 200 and "_dash-config" in page.text


def test_the_layout_comes_with_the_page_the_browser_is_on(get: Get) -> None:
    """The page asked for is in the layout itself (no router round trip before its first refresh);
    without a Referer the router renders it."""
    on_air = json.dumps(get("/_dash-layout", {"Referer": "http://dashboard/air"}).json())  # type: ignore[call-arg]
    assert '"id": "air-body"' in on_air and '"id": "tile-grid-kw"' not in on_air
    on_overview = json.dumps(get("/_dash-layout", {"Referer": "http://dashboard/"}).json())  # type: ignore[call-arg]
    assert '"id": "tile-grid-kw"' in on_overview
    plain = json.dumps(get("/_dash-layout").json())
    assert '"id": "tile-grid-kw"' not in plain and '"id": "page-content"' in plain
