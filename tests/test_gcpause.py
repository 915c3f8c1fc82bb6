"""paused_gc: the collector is off inside, back on after the last of nested or concurrent pauses,
and left off if it was off before."""

from __future__ import annotations

import gc
import threading

from lingtan.kernel.gcpause import paused_gc


def test_nested_and_concurrent_pauses_restore_the_collector() -> None:
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with paused_gc():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with paused_gc():
        assert not gc.isenabled()
        t.start()
        inside.wait(10)
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's pause is still on
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
