"""The served app: honest 404s, nothing fetched from the internet, the contract ids present."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from dashboard.app import create_asgi_app
from dashboard.tiles import TILE_IDS
from lingtan.settings import get_settings

Get = Callable[[str], httpx.Response]


@pytest.fixture
def get(monkeypatch: pytest.MonkeyPatch) -> Iterator[Get]:
    """GET through the ASGI app exactly as uvicorn serves it."""
    monkeypatch.setenv("LINGTAN_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    get_settings.cache_clear()
    app = create_asgi_app()

    async def fetch(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
            return await client.get(path)

    try:
        yield lambda path: asyncio.run(fetch(path))
    finally:
        get_settings.cache_clear()


def test_index_serves_only_local_resources(get: Get) -> None:
    page = get("/")
    assert page.status_code == 200
    assert "Lingtan" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls, "expected script and stylesheet tags"
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert any("style.css" in u for u in urls)


def test_unknown_path_is_404(get: Get) -> None:
    assert get("/no/such/page").status_code == 404
    assert get("/api/v1/sites").status_code == 404
    assert get("/assets/no-such.css").status_code == 404
    assert get("/assets/style.css").status_code == 200


def test_layout_has_contract_ids(get: Get) -> None:
    layout = json.dumps(get("/_dash-layout").json())
    for tile_id in (*TILE_IDS, "power-chart"):
        assert f'"id": "{tile_id}"' in layout
