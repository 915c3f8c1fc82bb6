"""The alert state machine as pure functions: ok → pending → firing → resolved (→ pending …).

No database, no clock: the evaluator passes in the previous state, what it observed and the time,
and stores what comes back. That keeps every rule kind on the same, separately tested, machine.

- **pending**: the condition holds but not yet for the rule's ``for_s``; a single good
  observation sends it back to ok without any notification.
- **firing**: held for ``for_s``. Exactly one "firing" notification per episode; if a silence or
  maintenance window mutes it, the notification goes out when the mute ends, if it still fires.
- **hysteresis**: a firing alert resolves only when the value is ``hysteresis`` back on the good
  side of the threshold, so a value hovering at the threshold does not flap.
- **resolved**: notified once, and only if the firing was notified (a recipient never gets a
  resolution for an alert they did not hear about). Resolutions are sent even under a silence:
  the recipient was told it fired and must not be left believing it still does.
- **re-notify**: while firing, not acknowledged and not muted, again every ``renotify_s``.
- **acknowledge**: stops re-notification for the episode; cleared when the episode resolves.
- no data (``value`` None, neither breached nor recovered): the state holds. Missing data is the
  offline rule's business, not a reason to fire or resolve a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

StateName = Literal["ok", "pending", "firing", "resolved"]
Notice = Literal["firing", "resolved", "renotify"]


@dataclass(frozen=True)
class Condition:
    """``value op threshold`` is a breach; recovery needs ``hysteresis`` more on the good side."""

    op: Literal[">", "<"]
    threshold: float
    hysteresis: float = 0.0

    def breached(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.threshold if self.op == ">" else value < self.threshold

    def recovered(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.op == ">":
            return value <= self.threshold - self.hysteresis
        return value >= self.threshold + self.hysteresis

    def observe(self, value: float | None) -> Observation:
        return Observation(value, self.breached(value), self.recovered(value))


@dataclass(frozen=True)
class Observation:
    value: float | None
    breached: bool
    recovered: bool


@dataclass(frozen=True)
class Timing:
    for_s: float = 0.0
    renotify_s: float | None = None


@dataclass(frozen=True)
class AlertState:
    state: StateName = "ok"
    since: datetime | None = None  # when the current state was entered (firing: the episode start)
    last_value: float | None = None
    notified: bool = False  # the firing notification of this episode has been queued
    last_notified_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    state: AlertState
    transition: StateName | None  # the state entered in this step, if it changed
    notice: Notice | None  # the notification to send, if any


def step(prev: AlertState, obs: Observation, now: datetime, timing: Timing, muted: bool = False) -> Step:
    """The state after observing ``obs`` at ``now``, and what (if anything) to notify."""
    s = replace(prev, last_value=obs.value if obs.value is not None else prev.last_value)
    transition: StateName | None = None
    if s.state in ("ok", "resolved"):
        if obs.breached:
            transition = "pending" if timing.for_s > 0 else "firing"
            s = replace(s, state=transition, since=now, notified=False, acked_by=None, acked_at=None)
    elif s.state == "pending":
        if obs.breached:
            assert s.since is not None
            if now - s.since >= timedelta(seconds=timing.for_s):
                transition = "firing"
                s = replace(s, state="firing", since=now, notified=False)
        elif obs.value is not None:
            # A good observation cancels the pending alert: it never fired, nobody is told.
            transition = "ok"
            s = replace(s, state="ok", since=now)
    elif s.state == "firing" and obs.recovered:
        transition = "resolved"
        notice: Notice | None = "resolved" if s.notified else None
        s = replace(s, state="resolved", since=now, acked_by=None, acked_at=None,
                    last_notified_at=now if notice else s.last_notified_at)
        return Step(s, transition, notice)

    if s.state == "firing" and not muted:
        if not s.notified:
            return Step(replace(s, notified=True, last_notified_at=now), transition, "firing")
        due = (timing.renotify_s is not None and s.acked_at is None and s.last_notified_at is not None
               and now - s.last_notified_at >= timedelta(seconds=timing.renotify_s))
        if due:
            return Step(replace(s, last_notified_at=now), transition, "renotify")
    return Step(s, transition, None)


class NotFiring(ValueError):
    pass


def acknowledge(prev: AlertState, by: str, now: datetime) -> AlertState:
    """Acknowledge a firing alert: no more re-notifications this episode. Acknowledging twice
    keeps the first acknowledgement."""
    if prev.state != "firing":
        raise NotFiring(f"only a firing alert can be acknowledged; this one is {prev.state}")
    if prev.acked_at is not None:
        return prev
    return replace(prev, acked_by=by, acked_at=now)
