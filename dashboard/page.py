"""The page protocol: what a dashboard page module provides, and what the framework does for it.

A page is a module with an id ``PREFIX`` and three functions (docs/architecture.md, "The
dashboard"):

- ``layout(ctx: LayoutContext) -> list``: the static skeleton inside ``<main>``; no database read,
  so a page renders while the database is down.
- ``load(read: Reader, q: PageQuery) -> data``: every database read of one refresh, through the
  core's service functions (the one KPI engine). ``data`` has a ``status`` (``dashboard.data.Status``,
  what the header shows); ``dashboard.data.status(conn, site, now)`` reads it.
- ``render(data, lang) -> children``: the page body's children (written into ``{PREFIX}-body``), or,
  for a page that declares ``OUTPUTS``, a value per output. Pure: no reads, no request.

Optional module attributes, for pages that need more than a body:

- ``OUTPUTS``: the (component id, property) pairs ``render`` writes instead of the body; the
  ``layout`` must then hold those components (the Overview's tiles and charts).
- ``INPUTS``: the page's own controls, (id, property), whose values arrive in ``PageQuery.inputs``.
- ``STATE``: the id of a ``dcc.Store`` in the layout whose data arrives in ``PageQuery.state`` (None
  when the reader switched site) and that ``render`` may write as one of its ``OUTPUTS``.
- ``REFRESH_EVERY``: refresh every n-th tick of the dashboard's refresh period (default 6).
- ``actions(app, read, default_site)``: registers the page's own callbacks (buttons, edits).

The framework (``dashboard.pages``) draws the frame around the layout (header, navigation, the
shared controls, the failure banner, a notice line), refreshes every page through one callback
(``dashboard.refresh.refresh``) and turns any failure of ``load`` or ``render`` into the banner while
the page keeps what it showed last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from dashboard.controls import View, window
from dashboard.data import Reader, Status
from dashboard.frame import pid
from dashboard.i18n import Lang
from lingtan.core.keys import RANK

Key = tuple[str, str]  # (component id, property)
DEFAULT_REFRESH_EVERY = 6  # detail pages change slowly: every 6th tick of the live Overview


@dataclass(frozen=True)
class LayoutContext:
    lang: Lang
    today: date  # the default site's calendar day (UTC's while the database is down)


@dataclass(frozen=True)
class PageQuery:
    """What one refresh asks a page for: the shared controls, the page's own inputs and state,
    the instant, and the reader's role (a page shows edit controls only to those who may edit)."""

    view: View
    now: datetime
    role: str = "viewer"
    inputs: tuple[Any, ...] = ()
    state: Any = None

    @property
    def site_id(self) -> str:
        return self.view.site_id

    def window(self, timezone: str) -> tuple[datetime, datetime]:
        """[start, end) of the chosen time range, in UTC, on the site's calendar."""
        return window(self.view, self.now, timezone)

    def may(self, role: str) -> bool:
        return RANK.get(self.role, 0) >= RANK[role]


class PageData(Protocol):
    status: Status


class PageModule(Protocol):
    PREFIX: str

    def layout(self, ctx: LayoutContext) -> list[Any]: ...

    def load(self, read: Reader, q: PageQuery) -> PageData: ...

    def render(self, data: Any, lang: Lang) -> Any: ...


@dataclass(frozen=True)
class Page:
    """One line of the registry: where the page lives, its module, its navigation label (a catalog
    key) and whether it uses the time range and basis controls."""

    path: str
    module: PageModule
    nav: str
    ranged: bool = False

    @property
    def prefix(self) -> str:
        return self.module.PREFIX

    def id(self, name: str) -> str:
        return pid(self.prefix, name)

    @property
    def body(self) -> Key:
        return (self.id("body"), "children")

    @property
    def outputs(self) -> tuple[Key, ...]:
        return tuple(getattr(self.module, "OUTPUTS", (self.body,)))

    @property
    def writes_body(self) -> bool:
        return self.outputs == (self.body,)

    @property
    def inputs(self) -> tuple[Key, ...]:
        return tuple(getattr(self.module, "INPUTS", ()))

    @property
    def state(self) -> str | None:
        return getattr(self.module, "STATE", None)

    @property
    def refresh_every(self) -> int:
        return int(getattr(self.module, "REFRESH_EVERY", DEFAULT_REFRESH_EVERY))
