"""One refresh of the Overview: snapshot → every output value. Pure apart from the loader,
so it is tested without a browser; the Dash callback in callbacks.py only wires it up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from dash import no_update

from api.services.kpi import FRESH
from api.services.queries import NotFound
from dashboard.chart import chart_patch, fetch_start, window
from dashboard.formatting import format_number, local_time
from dashboard.snapshot import Snapshot
from dashboard.tiles import TILES, note_id, tile_views

log = logging.getLogger(__name__)

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
)

Loader = Callable[[datetime, datetime, datetime], Snapshot]  # (now, series start, series end)


class NotConfigured(RuntimeError):
    pass


def is_live(snap: Snapshot) -> bool:
    """Live = every power meter answered within the KPI engine's freshness limit."""
    as_of = snap.overview.power.as_of
    return as_of is not None and not snap.overview.offline and snap.now - as_of <= FRESH


def snapshot_outputs(snap: Snapshot, state: dict[str, Any] | None) -> dict[tuple[str, str], Any]:
    tz = snap.site.timezone
    out: dict[tuple[str, str], Any] = {}
    for tile_id, view in tile_views(snap).items():
        out[(tile_id, "children")] = view.text
        out[(tile_id, "data-value")] = view.value
        out[(tile_id, "className")] = "tile-value" if view.state == "ok" else "tile-value missing"
        out[(note_id(tile_id), "children")] = view.note
        out[(note_id(tile_id), "title")] = view.note_title
    as_of = snap.overview.power.as_of
    live = is_live(snap)
    coverage = snap.overview.today.coverage
    today_note = f"since 00:00 {tz}"
    if round(coverage * 100, 1) < 100:
        today_note += f" · data coverage {format_number(coverage * 100, 1)} %"
    patch, new_state = chart_patch(state, snap.series, snap.now, tz)
    out.update({
        ("site-name", "children"): snap.site.name,
        ("as-of", "children"): f"{local_time(as_of, tz)} {tz}" if as_of else "no recent readings",
        ("status-badge", "children"): "live" if live else "stale",
        ("status-badge", "className"): "badge badge-live" if live else "badge badge-stale",
        ("db-banner", "children"): "",
        ("db-banner", "className"): "banner hidden",
        ("today-note", "children"): today_note,
        ("power-chart", "figure"): patch,
        ("chart-state", "data"): new_state,
    })
    return out


def error_outputs(message: str) -> dict[tuple[str, str], Any]:
    """Only the banner and the badge change: the tiles and chart keep their last values."""
    return {
        ("status-badge", "children"): "stale",
        ("status-badge", "className"): "badge badge-error",
        ("db-banner", "children"): message,
        ("db-banner", "className"): "banner",
    }


class _Outage:
    """Logs when the database goes away and when it is back, not once per tick per screen."""

    down = False

    @classmethod
    def failed(cls, exc: Exception) -> None:
        if not cls.down:
            cls.down = True
            log.warning("dashboard: database unreachable (%s: %s)", exc.__class__.__name__, exc)

    @classmethod
    def ok(cls) -> None:
        if cls.down:
            cls.down = False
            log.info("dashboard: database reachable again")


def refresh(load: Loader, state: dict[str, Any] | None, now: datetime) -> dict[tuple[str, str], Any]:
    """All outputs for one tick; any failure becomes a banner, never a broken page."""
    first, last = window(now)
    end = last + timedelta(minutes=1)
    try:
        snap = load(now, fetch_start(state, now), end)
        if state and state.get("tz") != snap.site.timezone:
            # the site moved time zone under an open page: the chart's x labels are all wrong
            state = None
            snap = load(now, first, end)
        outputs = snapshot_outputs(snap, state)
        _Outage.ok()
        return outputs
    except NotConfigured as exc:
        return error_outputs(str(exc))
    except NotFound as exc:
        return error_outputs(f"Site not found: {exc}")
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        _Outage.failed(exc)
        # the site's zone is known once a refresh has succeeded on this page
        tz = (state or {}).get("tz")
        checked = f"{local_time(now, tz, '%H:%M:%S')}" if tz else now.strftime("%H:%M:%S UTC")
        return error_outputs(
            f"Database unreachable (last try {checked}) — showing the last values received."
        )
    except Exception:
        log.exception("dashboard refresh failed")
        return error_outputs("Refresh failed — showing the last values received. See the server log.")


def ordered(outputs: dict[tuple[str, str], Any]) -> list[Any]:
    return [outputs.get(key, no_update) for key in OUTPUTS]
