"""The page frame: the URL, the reader's language, and the slot the router fills with a page
(header, navigation, controls and the page's own body)."""

from __future__ import annotations

from dash import dcc, html

from dashboard.i18n import DEFAULT, Lang

PRODUCT = "Lingtan 零碳"


def build_layout(refresh_seconds: float, lang: Lang = DEFAULT) -> html.Div:
    return html.Div(
        className="page",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="lang", data=lang),
            dcc.Store(id="refresh-ms", data=int(refresh_seconds * 1000)),
            html.Div(id="page-content"),
        ],
    )
