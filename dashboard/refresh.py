"""One refresh of any page: load → header and the page's outputs, or the failure banner. Pure apart
from the page's reads, so it is tested without a browser; the Dash callback in dashboard.pages only
wires it up (one callback function, registered for every page)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import no_update

from dashboard.data import Reader, failure_outputs, header_output_keys, header_outputs, read_succeeded
from dashboard.i18n import Lang
from dashboard.page import Key, Page, PageQuery


def output_keys(page: Page) -> tuple[Key, ...]:
    """Every output of the page's refresh callback, in callback order: the header's, then the page's."""
    return (*header_output_keys(page.prefix), *page.outputs)


def refresh(page: Page, read: Reader, q: PageQuery, lang: Lang = "en", timezone: str | None = None
            ) -> dict[Key, Any]:
    """The outputs of one refresh; any failure is the banner and nothing else, so the page keeps
    the values it showed last. ``timezone``: the site's, once a refresh has succeeded on the page
    (the banner's time is then the site's clock)."""
    try:
        data = page.module.load(read, q)
        out = header_outputs(page.prefix, data.status, lang)
        rendered = page.module.render(data, lang)
        out.update({page.body: rendered} if page.writes_body else rendered)
        read_succeeded()
        return out
    except Exception as exc:  # any failure is a banner; the page keeps its last values
        return failure_outputs(page.prefix, exc, q.now, lang, timezone)


def ordered(keys: Sequence[Key], outputs: dict[Key, Any]) -> list[Any]:
    return [outputs.get(key, no_update) for key in keys]
