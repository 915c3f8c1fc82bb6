"""KPI tiles: what each shows, how it is formatted, and why a value may be missing."""

from __future__ import annotations

from dataclasses import dataclass

from dash import html

from dashboard.formatting import MISSING, data_value, factor_caption, format_number
from dashboard.snapshot import Snapshot


@dataclass(frozen=True)
class TileSpec:
    id: str  # id of the value element; tests and the demo's end-to-end test rely on it
    label: str
    unit: str
    decimals: int
    group: str  # "now" or "today"


TILES: tuple[TileSpec, ...] = (
    TileSpec("tile-grid-kw", "Grid power", "kW", 1, "now"),
    TileSpec("tile-pv-kw", "PV power", "kW", 1, "now"),
    TileSpec("tile-load-kw", "Site load", "kW", 1, "now"),
    TileSpec("tile-today-kwh", "Consumption", "kWh", 1, "today"),
    TileSpec("tile-today-tco2", "CO₂ (location-based)", "t", 3, "today"),
    TileSpec("tile-green-ratio", "Green-power ratio", "%", 1, "today"),
    TileSpec("tile-intensity", "Carbon intensity", "kgCO₂/kWh", 3, "today"),
)
TILE_IDS: tuple[str, ...] = tuple(t.id for t in TILES)


@dataclass(frozen=True)
class TileView:
    text: str
    value: str  # data-value attribute: raw float or ""
    note: str
    note_title: str = ""  # hover text, e.g. the full source of an emission factor
    state: str = "ok"  # "ok" or "missing": drives styling


def note_id(tile_id: str) -> str:
    return f"{tile_id}-note"


def _view(spec: TileSpec, value: float | None, note: str, missing_note: str, title: str = "") -> TileView:
    if value is None:
        return TileView(MISSING, "", missing_note, title, "missing")
    return TileView(format_number(value, spec.decimals), data_value(value), note, title)


def _power_missing(snap: Snapshot, roles: tuple[str, ...]) -> str:
    meters = [m for role in roles for m in snap.roles.get(role, [])]
    if not meters:
        return "no meter"
    if any(m in snap.overview.offline for m in meters):
        return "offline"
    return "no data"


def tile_views(snap: Snapshot) -> dict[str, TileView]:
    power, today = snap.overview.power, snap.overview.today
    specs = {t.id: t for t in TILES}
    # No minute of grid data since midnight means "no data", not 0 kWh and 0 t.
    has_today = today.coverage > 0
    grid_note = "importing" if (power.grid_kw or 0) >= 0 else "exporting"
    caption = factor_caption(today.factor)
    ratio = today.green_power_ratio * 100 if today.green_power_ratio is not None else None
    views = {
        "tile-grid-kw": _view(specs["tile-grid-kw"], power.grid_kw, grid_note,
                              _power_missing(snap, ("grid_import",))),
        "tile-pv-kw": _view(specs["tile-pv-kw"], power.pv_kw, "generating" if (power.pv_kw or 0) > 0
                            else "idle", _power_missing(snap, ("pv_generation",))),
        "tile-load-kw": _view(specs["tile-load-kw"], power.load_kw, "grid + PV",
                              _power_missing(snap, ("grid_import", "pv_generation"))),
        "tile-today-kwh": _view(specs["tile-today-kwh"], today.consumption_kwh if has_today else None,
                                f"grid {format_number(today.grid_import_kwh, 0)} kWh · "
                                f"PV {format_number(today.pv_kwh, 0)} kWh", "no data"),
        "tile-today-tco2": _view(specs["tile-today-tco2"], today.co2_t if has_today else None,
                                 caption, "no data", today.factor.source),
        "tile-green-ratio": _view(specs["tile-green-ratio"], ratio if has_today else None,
                                  "PV self-consumed ÷ consumption", "no data"),
        "tile-intensity": _view(specs["tile-intensity"],
                                today.carbon_intensity_kg_per_kwh if has_today else None,
                                "grid CO₂ ÷ consumption", "no data"),
    }
    return views


def tile(spec: TileSpec) -> html.Div:
    """One tile; value and unit are siblings so the value text is a bare number."""
    return html.Div(
        className=f"tile tile-{spec.group}",
        children=[
            html.Div(spec.label, className="tile-label"),
            html.Div(
                className="tile-reading",
                children=[
                    html.Span(MISSING, id=spec.id, className="tile-value missing", **{"data-value": ""}),
                    html.Span(spec.unit, className="tile-unit"),
                ],
            ),
            html.Div("waiting for data", id=note_id(spec.id), className="tile-note"),
        ],
    )
