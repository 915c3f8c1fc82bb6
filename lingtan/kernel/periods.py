"""Windows a KPI is computed over: rolling windows ending now, and calendar periods in a site's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Rolling = Literal["15m", "1h", "24h", "30d"]
Calendar = Literal["day", "month", "year"]

ROLLING: dict[str, timedelta] = {
    "15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24),
    "30d": timedelta(days=30),
}


class PeriodError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def rolling(window: str, end: datetime) -> tuple[datetime, datetime]:
    if window not in ROLLING:
        raise PeriodError("window", f"unknown window {window!r} (known: {', '.join(ROLLING)})")
    return end - ROLLING[window], end


def calendar(period: str, day: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the day, month or year containing ``day``, in the site's time zone."""
    tz = ZoneInfo(timezone)
    if period == "day":
        a, b = day, day + timedelta(days=1)
    elif period == "month":
        a = day.replace(day=1)
        b = (a + timedelta(days=32)).replace(day=1)
    elif period == "year":
        a, b = date(day.year, 1, 1), date(day.year + 1, 1, 1)
    else:
        raise PeriodError("period", f"unknown period {period!r} (known: day, month, year)")
    return _midnight(a, tz), _midnight(b, tz)


def _midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def split_by_year(start: datetime, end: datetime, timezone: str) -> list[tuple[int, datetime, datetime]]:
    """The window cut at local New Year, so each piece is converted with its own year's factors."""
    tz = ZoneInfo(timezone)
    pieces: list[tuple[int, datetime, datetime]] = []
    a = start
    while a < end:
        year = a.astimezone(tz).year
        b = min(end, _midnight(date(year + 1, 1, 1), tz))
        pieces.append((year, a, b))
        a = b
    return pieces
