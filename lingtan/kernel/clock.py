"""The one source of "now" for every figure that depends on it.

Code that asks what time it is calls ``now()`` (or takes a ``now`` argument that defaults to it),
never ``datetime.now`` directly, so a test can pin the instant: a site's midnight, a month end, a
year end, whatever the machine's own clock says. ``site_today`` is the site's calendar day, the
day a dashboard tile and ``GET /kpis?period=day`` mean; it is never the machine's ``date.today()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


_clock: Clock = system_clock


def now() -> datetime:
    """The current instant, timezone-aware (UTC)."""
    return _clock()


def set_clock(clock: Clock) -> Clock:
    """Replace the clock; returns the previous one so the caller can put it back."""
    global _clock
    previous, _clock = _clock, clock
    return previous


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Within the block, ``now()`` is ``at`` (which must be timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError("a frozen instant must be timezone-aware")
    previous = set_clock(lambda: at)
    try:
        yield
    finally:
        set_clock(previous)


def starting_at(at: datetime) -> Clock:
    """A clock that reads ``at`` now and then runs at the real rate: a whole process (a dashboard
    under test, a replay) lives at a chosen hour, e.g. just after a site's midnight."""
    if at.tzinfo is None:
        raise ValueError("a clock's start must be timezone-aware")
    origin = time.monotonic()
    return lambda: at + timedelta(seconds=time.monotonic() - origin)


def site_today(timezone: str, at: datetime | None = None) -> date:
    """The calendar day at the site (its own time zone) at ``at``, default now."""
    return (at or now()).astimezone(ZoneInfo(timezone)).date()
