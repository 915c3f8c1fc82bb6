"""The bucket grid every rollup, series and window is cut on."""

from __future__ import annotations

from datetime import datetime, timedelta

# Day buckets start at midnight China Standard Time (UTC+8, no daylight saving), the time zone
# of every site Lingtan serves; shorter buckets are the same in any whole-hour time zone.
ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+08:00")


def floor_time(t: datetime, width: timedelta) -> datetime:
    return t - ((t - ORIGIN) % width)


def ceil_time(t: datetime, width: timedelta) -> datetime:
    floor = floor_time(t, width)
    return floor if floor == t else floor + width
