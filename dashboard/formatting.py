"""Display formatting shared by tiles and header: one place decides how a number looks."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from api.factors import Factor

MISSING = "—"  # an absent value is a dash, never a 0 that could be mistaken for a reading


def format_number(value: float | None, decimals: int) -> str:
    """Thousands-separated, fixed decimals; ASCII minus so tests and scrapers can parse it."""
    if value is None or not math.isfinite(value):
        return MISSING
    text = f"{value:,.{decimals}f}"
    # "-0.0" reads like a sign error on a wall screen
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def data_value(value: float | None) -> str:
    """The raw value for the ``data-value`` attribute ("" when absent), unrounded."""
    if value is None or not math.isfinite(value):
        return ""
    return repr(float(value))


def local_time(t: datetime, timezone: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return t.astimezone(ZoneInfo(timezone)).strftime(fmt)


def factor_caption(factor: Factor) -> str:
    """Short form for the tile, e.g. "North-East China grid 0.5122 kgCO₂/kWh, MEE/NBS 2023"."""
    publisher = factor.source.split(" ", 1)[0]
    unit = factor.unit.replace("CO2", "CO₂")
    return f"{factor.label} {factor.value:.4f} {unit}, {publisher} {factor.year}"
