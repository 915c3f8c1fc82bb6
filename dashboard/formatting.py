"""Display formatting shared by tiles and header: one place decides how a number looks."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal

from dashboard.i18n import CATALOG, LOCALES, Lang, t
from lingtan.core.factors import Factor

MISSING = "—"  # an absent value is a dash, never a 0 that could be mistaken for a reading


def format_number(value: float | None, decimals: int, lang: Lang = "en") -> str:
    """Grouped, fixed decimals with the language's CLDR symbols (Babel); ASCII minus so tests
    and scrapers can parse it."""
    if value is None or not math.isfinite(value):
        return MISSING
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    text = format_decimal(value, format=pattern, locale=LOCALES[lang]).replace("\u2212", "-")
    # "-0.0" reads like a sign error on a wall screen
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text


def date_time(when: datetime, timezone: str, lang: Lang, seconds: bool = True) -> str:
    """Site-local date and time as each reader writes it: "2026年11月22日 14:05:09" or
    "22 Nov 2026, 14:05:09"."""
    pattern = {"zh": "y年M月d日 HH:mm", "en": "d MMM y, HH:mm"}[lang] + (":ss" if seconds else "")
    return format_datetime(when, pattern, tzinfo=ZoneInfo(timezone), locale=LOCALES[lang])


def data_value(value: float | None) -> str:
    """The raw value for the ``data-value`` attribute ("" when absent), unrounded."""
    if value is None or not math.isfinite(value):
        return ""
    return repr(float(value))


def local_time(t: datetime, timezone: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return t.astimezone(ZoneInfo(timezone)).strftime(fmt)


def factor_caption(factor: Factor, lang: Lang = "en") -> str:
    """Short form for the tile, e.g. "North-East China grid 0.5122 kgCO₂/kWh, MEE/NBS 2023";
    the full source stays in English, as published, in the tile's hover text."""
    publisher = factor.source.split(" ", 1)[0]
    unit = factor.unit.replace("CO2", "CO₂")
    label = factor.label
    key = f"factor.{factor.kind}"
    if factor.region and key in CATALOG:
        label = t(key, lang, region=t(f"region.{factor.region}", lang))
    sep = "，" if lang == "zh" else ", "
    return f"{label} {format_number(factor.value, 4, lang)} {unit}{sep}{publisher} {factor.year}"
