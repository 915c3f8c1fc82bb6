"""What every page shares: the header (brand, navigation, live status, language switch, sign-out)
and the database banner. Ids carry the page's prefix: each page's refresh callback writes its
own header, so no output has two writers."""

from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from dashboard.i18n import Lang, t


def pid(prefix: str, name: str) -> str:
    """A component id on a page: the Overview keeps the bare ids tests and scripts rely on."""
    return name if not prefix else f"{prefix}-{name}"


def header(lang: Lang, prefix: str, path: str, user: str | None) -> html.Header:
    other: Lang = "en" if lang == "zh" else "zh"
    right: list = [
        html.Div(className="as-of-block", children=[
            html.Span(t("as_of", lang), className="as-of-label"),
            html.Span("—", id=pid(prefix, "as-of"), className="as-of"),
        ]),
        html.Span(t("status.connecting", lang), id=pid(prefix, "status-badge"),
                  className="badge badge-stale"),
        # a plain link: the page is rendered again in the other language, every label with it
        html.A(t("lang.switch", lang), id="lang-switch", href=f"{path}?lang={other}",
               className="lang-switch", title=t("lang.switch.title", lang), lang=other),
    ]
    if user:
        right.append(html.A(t("sign_out", lang), href="/logout", className="sign-out", title=user))
    return html.Header(className="header", children=[
        html.Div(className="brand", children=[
            html.Span("Lingtan", className="brand-latin"),
            html.Span("零碳", className="brand-han"),
        ]),
        html.Div("…", id=pid(prefix, "site-name"), className="site-name"),
        html.Div(className="status", children=right),
    ])


def nav(lang: Lang, path: str, entries: Sequence[tuple[str, str]]) -> html.Nav:
    """``entries``: (path, catalog key of the label) of every page, in the registry's order."""
    return html.Nav(className="nav", children=[
        dcc.Link(t(key, lang), href=href, className="nav-link active" if href == path else "nav-link",
                 id=f"nav-{href.strip('/') or 'overview'}")
        for href, key in entries
    ])


def banner(prefix: str) -> html.Div:
    return html.Div("", id=pid(prefix, "db-banner"), className="banner hidden", role="alert")
