"""The alert state machine (lingtan/core/alerts/state.py): transitions, hysteresis, for-duration, re-notify,
mutes and acknowledgement, with hypothesis checking the invariants over arbitrary value sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lingtan.core.alerts.state import AlertState, Condition, NotFiring, Timing, acknowledge, step

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
ABOVE = Condition(">", 100.0, hysteresis=10.0)


def run(values: list[float | None], timing: Timing | None = None, muted: list[bool] | None = None,
        cond: Condition = ABOVE, every_s: int = 60) -> tuple[AlertState, list[tuple[int, str]]]:
    s = AlertState()
    timing = timing or Timing()
    notices = []
    for i, v in enumerate(values):
        out = step(s, cond.observe(v), T0 + timedelta(seconds=i * every_s), timing,
                   muted=bool(muted and muted[i]))
        s = out.state
        if out.notice:
            notices.append((i, out.notice))
    return s, notices


def test_fires_once_and_resolves_once():
    s, notices = run([50, 120, 130, 125, 95, 80, 70])
    assert notices == [(1, "firing"), (5, "resolved")]
    assert s.state == "resolved"


def test_hysteresis_keeps_a_value_hovering_at_the_threshold_firing():
    # 95 is below the threshold but not 10 below it: still firing; 90 resolves.
    _, notices = run([101, 95, 99, 95, 101, 90])
    assert notices == [(0, "firing"), (5, "resolved")]


def test_below_operator_and_its_hysteresis():
    cond = Condition("<", 10.0, hysteresis=2.0)
    _, notices = run([12, 9, 11, 12, 9], cond=cond)
    assert notices == [(1, "firing"), (3, "resolved"), (4, "firing")]


def test_for_duration_needs_the_condition_held_that_long():
    timing = Timing(for_s=180)
    s, notices = run([120, 120, 120], timing)
    assert notices == [] and s.state == "pending"
    _, notices = run([120, 120, 120, 120], timing)
    assert notices == [(3, "firing")]
    # One good value in between restarts the clock, and a cancelled pending tells nobody.
    s, notices = run([120, 120, 50, 120, 120, 120, 120], timing)
    assert notices == [(6, "firing")]


def test_missing_data_neither_fires_nor_resolves():
    s, notices = run([120, None, None, 120])
    assert notices == [(0, "firing")] and s.state == "firing" and s.last_value == 120
    s, notices = run([None, None])
    assert notices == [] and s.state == "ok"


def test_renotify_until_acknowledged_and_ack_is_cleared_on_resolve():
    timing = Timing(renotify_s=300)
    _, notices = run([120] * 11, timing)
    assert notices == [(0, "firing"), (5, "renotify"), (10, "renotify")]

    s = step(AlertState(), ABOVE.observe(120), T0, timing).state
    s = acknowledge(s, "operator", T0 + timedelta(minutes=1))
    for i in range(2, 12):
        out = step(s, ABOVE.observe(120), T0 + timedelta(minutes=i), timing)
        assert out.notice is None
        s = out.state
    out = step(s, ABOVE.observe(10), T0 + timedelta(minutes=12), timing)
    assert out.notice == "resolved" and out.state.acked_at is None


def test_acknowledge_needs_a_firing_alert_and_keeps_the_first():
    with pytest.raises(NotFiring):
        acknowledge(AlertState(), "x", T0)
    firing = step(AlertState(), ABOVE.observe(120), T0, Timing()).state
    first = acknowledge(firing, "a", T0)
    assert acknowledge(first, "b", T0 + timedelta(minutes=1)).acked_by == "a"


def test_a_mute_delays_the_firing_notice_and_a_muted_episode_resolves_silently():
    # Muted the whole episode: nothing is sent, not even the resolution.
    _, notices = run([120, 120, 50], muted=[True, True, True])
    assert notices == []
    # Mute ends while still firing: the firing notice goes out then, once.
    _, notices = run([120, 120, 120, 120], muted=[True, True, False, False])
    assert notices == [(2, "firing")]
    # Notified, then silenced: the resolution still goes out.
    _, notices = run([120, 120, 50], muted=[False, True, True])
    assert notices == [(0, "firing"), (2, "resolved")]


values = st.lists(st.one_of(st.none(), st.floats(0, 200)), max_size=60)


@given(values, st.integers(0, 300), st.lists(st.booleans(), min_size=60, max_size=60))
def test_notices_alternate_firing_then_resolved(vals, for_s, muted):
    _, notices = run(vals, Timing(for_s=for_s), muted=muted)
    kinds = [k for _, k in notices]
    # firing, resolved, firing, resolved, …: one of each per episode, never two in a row.
    assert kinds == ["firing", "resolved"] * (len(kinds) // 2) + ["firing"] * (len(kinds) % 2)


@given(values, st.integers(0, 300))
def test_firing_only_after_the_condition_held_for_the_duration(vals, for_s):
    _, notices = run(vals, Timing(for_s=for_s))
    for i, kind in notices:
        if kind != "firing":
            continue
        # Walk back over the breaches (gaps hold the state) to where the pending began.
        j = i
        while j > 0 and (vals[j - 1] is None or vals[j - 1] > 100):
            j -= 1
        while vals[j] is None:
            j += 1
        assert (i - j) * 60 >= for_s


@given(values)
def test_every_resolution_follows_a_recovery_below_the_hysteresis_band(vals):
    _, notices = run(vals)
    for i, kind in notices:
        if kind == "resolved":
            assert vals[i] is not None and vals[i] <= 90
