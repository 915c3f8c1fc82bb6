"""Local time of the demo plant (Asia/Shanghai) from UTC epoch seconds."""

from __future__ import annotations

# China has kept UTC+8 all year since 1991, so a fixed offset is exact and far cheaper
# than a zoneinfo lookup on every simulated second.
UTC_OFFSET_S = 8 * 3600
SUNDAY = 6


def local_day_and_second(epoch_s: float) -> tuple[int, float]:
    """(weekday Monday=0 … Sunday=6, seconds since local midnight)."""
    local = epoch_s + UTC_OFFSET_S
    days, sec = divmod(local, 86400.0)
    # 1970-01-01 was a Thursday (weekday 3).
    return (int(days) + 3) % 7, sec
