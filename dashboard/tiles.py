"""KPI tiles: what each shows, how it is formatted, and why a value may be missing."""

from __future__ import annotations

from dataclasses import dataclass

from dash import html

from dashboard.controls import Basis
from dashboard.formatting import MISSING, data_value, factor_caption, format_number
from dashboard.i18n import Lang, t
from dashboard.snapshot import Snapshot
from lingtan.core.figures import Figure
from lingtan.core.kpi import WindowKpis


@dataclass(frozen=True)
class TileSpec:
    id: str  # id of the value element; tests and the demo's end-to-end test rely on it
    label: str  # catalog key (dashboard.i18n)
    unit: str  # SI symbols read the same in both languages
    decimals: int
    group: str  # "now" or "today"


TILES: tuple[TileSpec, ...] = (
    TileSpec("tile-grid-kw", "tile.grid_kw", "kW", 1, "now"),
    TileSpec("tile-pv-kw", "tile.pv_kw", "kW", 1, "now"),
    TileSpec("tile-load-kw", "tile.load_kw", "kW", 1, "now"),
    TileSpec("tile-today-kwh", "tile.today_kwh", "kWh", 1, "today"),
    TileSpec("tile-today-tco2", "tile.today_tco2", "tCO₂e", 3, "today"),
    TileSpec("tile-today-tce", "tile.today_tce", "tce", 3, "today"),
    TileSpec("tile-green-ratio", "tile.green_ratio", "%", 1, "today"),
    TileSpec("tile-intensity", "tile.intensity", "kgCO₂/kWh", 3, "today"),
    TileSpec("tile-intensity-24h", "tile.intensity_24h", "kgCO₂/kWh", 3, "today"),
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


def _carbon_t(k: WindowKpis, basis: Basis) -> Figure:
    """Scope 1 + Scope 2 (gross import) on the chosen basis, as the KPI engine totals it."""
    return k.carbon.scope12_market_t if basis == "market" else k.carbon.scope12_location_t


def _intensity(k: WindowKpis | None, basis: Basis) -> Figure | None:
    if k is None:
        return None
    return (k.carbon.intensity_market_kg_per_kwh if basis == "market"
            else k.carbon.intensity_location_kg_per_kwh)


def tile_views(snap: Snapshot, lang: Lang = "en", basis: Basis = "location") -> dict[str, TileView]:
    power, today = snap.overview.power, snap.today
    specs = {s.id: s for s in TILES}

    def view(tile_id: str, value: float | None, note: str, missing: str, title: str = "") -> TileView:
        if value is None:
            return TileView(MISSING, "", t(missing, lang), title, "missing")
        return TileView(format_number(value, specs[tile_id].decimals, lang), data_value(value), note, title)

    def figure(tile_id: str, f: Figure | None, note: str, title: str = "", scale: float = 1.0) -> TileView:
        """A KPI figure; no data at all is "no data", partial data says its coverage."""
        if f is None or f.value is None or f.coverage <= 0:
            return view(tile_id, None, note, "missing.no_data", title)
        if round(f.coverage * 100, 1) < 100:
            note = " · ".join(x for x in (note, t("today.coverage", lang,
                                                    pct=format_number(f.coverage * 100, 1, lang))) if x)
        return view(tile_id, f.value * scale, note, "missing.no_data", title)

    def power_missing(roles: tuple[str, ...]) -> str:
        meters = [m for role in roles for m in snap.roles.get(role, [])]
        if not meters:
            return "missing.no_meter"
        if any(m in snap.overview.offline for m in meters):
            return "missing.offline"
        return "missing.no_data"

    grid_note = t("note.importing" if (power.grid_kw or 0) >= 0 else "note.exporting", lang)
    views = {
        "tile-grid-kw": view("tile-grid-kw", power.grid_kw, grid_note, power_missing(("grid_import",))),
        "tile-pv-kw": view("tile-pv-kw", power.pv_kw,
                           t("note.generating" if (power.pv_kw or 0) > 0 else "note.idle", lang),
                           power_missing(("pv_generation",))),
        "tile-load-kw": view("tile-load-kw", power.load_kw, t("note.grid_plus_pv", lang),
                             power_missing(("grid_import", "pv_generation"))),
    }
    if today is None:
        return views | {s.id: view(s.id, None, "", "missing.no_data") for s in TILES if s.group == "today"}
    el = today.electricity
    grid_factor = next((f for f in today.factors if f.kind == ("grid_residual" if basis == "market"
                                                                   else "grid")), None)
    caption = factor_caption(grid_factor, lang) if grid_factor else ""
    source = grid_factor.source if grid_factor else ""
    return views | {
        "tile-today-kwh": figure("tile-today-kwh", el.consumption_kwh, t(
            "note.today_split", lang, grid=format_number(el.grid_import_kwh.value, 0, lang),
            pv=format_number(el.pv_generation_kwh.value, 0, lang))),
        "tile-today-tco2": figure("tile-today-tco2", _carbon_t(today, basis),
                                  t(f"note.scope12.{basis}", lang), source),
        "tile-today-tce": figure("tile-today-tce", today.energy.tce_total, t("note.tce", lang)),
        "tile-green-ratio": figure("tile-green-ratio", el.green_power_ratio, t("note.green_ratio", lang),
                                   scale=100.0),
        "tile-intensity": figure("tile-intensity", _intensity(snap.last_15m, basis), caption, source),
        "tile-intensity-24h": figure("tile-intensity-24h", _intensity(snap.last_24h, basis),
                                     t("note.intensity_24h", lang)),
    }


def tile(spec: TileSpec, lang: Lang = "en") -> html.Div:
    """One tile; value and unit are siblings so the value text is a bare number."""
    return html.Div(
        className=f"tile tile-{spec.group}",
        children=[
            html.Div(t(spec.label, lang), className="tile-label"),
            html.Div(
                className="tile-reading",
                children=[
                    html.Span(MISSING, id=spec.id, className="tile-value missing", **{"data-value": ""}),
                    html.Span(spec.unit, className="tile-unit"),
                ],
            ),
            html.Div(t("note.waiting", lang), id=note_id(spec.id), className="tile-note"),
        ],
    )
