"""Building blocks of the detail pages: a figure tile that shows its coverage, and the plotly
layout every chart shares (dark, transparent, the same font stack as the page)."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.chart import FONT
from dashboard.formatting import MISSING, data_value, format_number
from dashboard.i18n import Lang, t


def base_layout() -> dict[str, Any]:
    return {"template": None, "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"color": "#c9d4df", "size": 14, "family": FONT},
            "margin": {"l": 56, "r": 24, "t": 24, "b": 40}}


def figure_tile(tile_id: str, label: str, value: float | None, unit: str, decimals: int, lang: Lang,
                note: str = "", coverage: float | None = None) -> html.Div:
    """A labelled number; absent is "—" with "no data", and partial data says its coverage."""
    notes = [note] if note else []
    if value is None:
        notes.append(t("missing.no_data", lang))
    elif coverage is not None and round(coverage * 100, 1) < 100:
        notes.append(t("today.coverage", lang, pct=format_number(coverage * 100, 1, lang)))
    return html.Div(className="tile", children=[
        html.Div(label, className="tile-label"),
        html.Div(className="tile-reading", children=[
            html.Span(format_number(value, decimals, lang) if value is not None else MISSING, id=tile_id,
                      className="tile-value" if value is not None else "tile-value missing",
                      **{"data-value": data_value(value)}),
            html.Span(unit, className="tile-unit"),
        ]),
        html.Div(" · ".join(notes), className="tile-note"),
    ])
