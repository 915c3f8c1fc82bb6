"""The frozen-meter rule (docs/domain.md, readings and counters): when a value that does not move
means a meter stuck on its last reading rather than a process standing still.

The one place this rule lives. The gateway applies it to each reading as it arrives (the STALE
flag, gateway/validate.py); the frozen-value alert applies it to the stored minutes
(lingtan/core/alerts/evaluate.py). Each measures how long the value has been exactly the same in
its own way; what counts as frozen is decided here.

- A live value is frozen once it has been exactly the same for longer than the limit.
- Never frozen: enumerated codes (``state``: a compressor stays loaded all shift) and a value of
  exactly 0 (an idle load; a frozen meter almost never freezes on an exact zero).
- A counter that does not move is usually zero consumption (nights, weekends), so it is frozen
  only when its device looks frozen as a whole: every live, non-zero series of the device is
  frozen itself. A device with only counters, or whose live values all sit at 0, never is
  (nothing to tell idle from frozen).
"""

from __future__ import annotations

from collections.abc import Iterable

# Enumerated codes: holding still for hours is normal.
NEVER_FROZEN = frozenset({"state"})


def can_freeze(quantity: str) -> bool:
    """Whether ``quantity`` holding still can mean a frozen meter at all."""
    return quantity not in NEVER_FROZEN


def idle(value: float) -> bool:
    """Exactly 0: an idle load, not a frozen meter."""
    return value == 0


def live_frozen(quantity: str, value: float, unchanged_s: float, limit_s: float) -> bool:
    """A live (non-counter) series that has read exactly ``value`` for ``unchanged_s`` seconds."""
    return can_freeze(quantity) and not idle(value) and unchanged_s > limit_s


def counter_frozen(unchanged_s: float, limit_s: float, live: Iterable[tuple[str, float, bool]]) -> bool:
    """A counter that has not moved for ``unchanged_s`` seconds; ``live`` gives (quantity, newest
    value, judged frozen) of each live series of the same device."""
    if unchanged_s <= limit_s:
        return False
    judged = [is_frozen for quantity, value, is_frozen in live if can_freeze(quantity) and not idle(value)]
    return bool(judged) and all(judged)
