"""Pause the cyclic garbage collector around work that allocates many short-lived objects.

Building a year of hourly KPI points allocates ~100,000 tuples, lists and dataclasses, none in a
reference cycle: reference counting frees them all, yet every few thousand allocations the
cyclic collector runs, and its older generations walk the whole process heap (the web stack,
pydantic models, plotly). Measured on a year of hours that is a third of the call. Nested and
concurrent pauses are counted: the collector runs again when the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = True


@contextmanager
def paused_gc() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
