"""One refresh of the Overview: snapshot → every output value. Pure apart from the loader,
so it is tested without a browser; the Dash callback in callbacks.py only wires it up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from dash import no_update

from dashboard.chart import chart_patch, fetch_start, window
from dashboard.controls import Basis
from dashboard.data import failure_outputs, read_succeeded
from dashboard.formatting import date_time, format_number
from dashboard.i18n import Lang, t
from dashboard.pages.overview import figure_patches
from dashboard.snapshot import Snapshot
from dashboard.tiles import TILES, note_id, tile_views
from lingtan.core.kpi import FRESH

# (component id, property) of every output the refresh callback writes, in callback order
OUTPUTS: tuple[tuple[str, str], ...] = (
    *((t.id, prop) for t in TILES for prop in ("children", "data-value", "className")),
    *((note_id(t.id), prop) for t in TILES for prop in ("children", "title")),
    ("site-name", "children"),
    ("as-of", "children"),
    ("status-badge", "children"),
    ("status-badge", "className"),
    ("db-banner", "children"),
    ("db-banner", "className"),
    ("today-note", "children"),
    ("power-chart", "figure"),
    ("chart-state", "data"),
    ("green-gauge", "figure"),
    ("flow-sankey", "figure"),
    ("intensity-chart", "figure"),
)

Loader = Callable[[datetime, datetime, datetime], Snapshot]  # (now, series start, series end)


def is_live(snap: Snapshot) -> bool:
    """Live = every power meter answered within the KPI engine's freshness limit."""
    as_of = snap.overview.power.as_of
    return as_of is not None and not snap.overview.offline and snap.now - as_of <= FRESH


def snapshot_outputs(snap: Snapshot, state: dict[str, Any] | None, lang: Lang = "en",
                     basis: Basis = "location") -> dict[tuple[str, str], Any]:
    tz = snap.site.timezone
    out: dict[tuple[str, str], Any] = {}
    for tile_id, view in tile_views(snap, lang, basis).items():
        out[(tile_id, "children")] = view.text
        out[(tile_id, "data-value")] = view.value
        out[(tile_id, "className")] = "tile-value" if view.state == "ok" else "tile-value missing"
        out[(note_id(tile_id), "children")] = view.note
        out[(note_id(tile_id), "title")] = view.note_title
    as_of = snap.overview.power.as_of
    live = is_live(snap)
    coverage = snap.today.electricity.consumption_kwh.coverage if snap.today else 0.0
    today_note = t("today.since", lang, tz=tz)
    if round(coverage * 100, 1) < 100:
        today_note += " · " + t("today.coverage", lang, pct=format_number(coverage * 100, 1, lang))
    patch, new_state = chart_patch(state, snap.series, snap.now, tz)
    out.update({
        ("site-name", "children"): snap.site.name,
        ("as-of", "children"): f"{date_time(as_of, tz, lang)} {tz}" if as_of else t("as_of.none", lang),
        ("status-badge", "children"): t("status.live" if live else "status.stale", lang),
        ("status-badge", "className"): "badge badge-live" if live else "badge badge-stale",
        ("db-banner", "children"): "",
        ("db-banner", "className"): "banner hidden",
        ("today-note", "children"): today_note,
        ("power-chart", "figure"): patch,
        ("chart-state", "data"): new_state,
    })
    out.update({(cid, "figure"): patch for cid, patch in figure_patches(snap, basis, lang).items()})
    return out


def refresh(load: Loader, state: dict[str, Any] | None, now: datetime, lang: Lang = "en",
            basis: Basis = "location") -> dict[tuple[str, str], Any]:
    """All outputs for one tick; any failure becomes a banner, never a broken page."""
    first, last = window(now)
    end = last + timedelta(minutes=1)
    try:
        snap = load(now, fetch_start(state, now), end)
        if state and state.get("tz") != snap.site.timezone:
            # the site moved time zone under an open page: the chart's x labels are all wrong
            state = None
            snap = load(now, first, end)
        outputs = snapshot_outputs(snap, state, lang, basis)
        read_succeeded()
        return outputs
    except Exception as exc:  # any failure is a banner; the tiles and chart keep their last values
        # the site's zone is known once a refresh has succeeded on this page
        return failure_outputs("", exc, now, lang, (state or {}).get("tz"))


def ordered(outputs: dict[tuple[str, str], Any]) -> list[Any]:
    return [outputs.get(key, no_update) for key in OUTPUTS]
