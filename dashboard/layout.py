"""The page frame: the URL, the reader's language, and the slot the router fills with a page
(header, navigation, controls and the page's own body)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.i18n import DEFAULT, Lang

PRODUCT = "Lingtan 零碳"


def build_layout(refresh_seconds: float, lang: Lang = DEFAULT, path: str | None = None,
                 first: list[Any] | None = None) -> html.Div:
    """``first``: the page at ``path`` already rendered, so the router leaves it as it is."""
    return html.Div(
        className="page",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="lang", data=lang),
            dcc.Store(id="refresh-ms", data=int(refresh_seconds * 1000)),
            dcc.Store(id="rendered-path", data=path if first is not None else None),
            html.Div(first, id="page-content"),
        ],
    )
