"""Reading validation between the collectors and the buffer: it only adds Quality flags.

A value is never changed or dropped: the database keeps what the meter said (counters are
stored as read, docs/architecture.md) and the rollups decide which deltas to trust (lingtan/core/energy.py:
readings flagged STALE or OUT_OF_RANGE are not counter samples there; resets and spikes are
judged again in time order, since arrival order can differ). A flag on a counter reading
describes the step *into* it from the previous in-order reading of the same series, as the
gateway saw it:

- COUNTER_RESET: the counter went down (meter replaced or cleared, register wrapped).
- SPIKE: an energy counter (kWh) rose by more than the device could have counted —
  rated_power_kw × elapsed hours × energy.SPIKE_FACTOR, plus one register step (the
  energy rule's own limit, lingtan/core/energy.py). Skipped without
  a rated power.
- OUT_OF_RANGE: outside the point's [min, max] (given in the point's unit, primary side, after
  CT/PT ratios), or not a finite number.
- STALE: a frozen value by lingtan/core/frozen.py's rule, with the device's `stale_after` as
  the limit, on every further identical reading (a frozen meter republishing old values with
  fresh timestamps). How long a value has been the same is measured from the first reading
  that had it. A healthy grid meter's voltage moves in the last digit every poll; when it
  stops, the flat counter next to it is a frozen meter, not an idle line — which is why a
  counter is judged by its device's live series, as they stand when the counter arrives.

Out-of-order readings (time not after the series' newest, e.g. an MQTT device replaying its
backlog) get only the range check and do not move the series state. State lives in memory:
after a restart the first reading of each series starts fresh.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.config import Device, Point
from gateway.decode import DecodeError, ratio_factor
from lingtan.core import frozen
from lingtan.core.energy import counter_step, step_limit
from lingtan.kernel.quantities import conversion, get_quantity
from lingtan.kernel.reading import Quality, Reading

log = logging.getLogger(__name__)

# Counter registers that wrap to 0 at the top of their range (2^n raw steps).
WRAP_SPAN = {"uint16": 2.0**16, "uint32": 2.0**32, "acc32": 2.0**32, "uint64": 2.0**64}
_INTEGER_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64", "acc32", "bool"})


@dataclass(frozen=True, slots=True)
class Rules:
    counter: bool
    low: float | None = None  # canonical unit
    high: float | None = None
    span: float | None = None  # canonical value at which the register wraps to 0
    step: float = 0.0  # canonical value of one raw register step (0: float or unknown)
    rated_kw: float | None = None  # only on kWh counters
    stale_after: float | None = None


@dataclass(slots=True)
class Series:
    value: float
    time: datetime
    changed: datetime  # when the value last changed
    stale: bool = False  # the newest reading was flagged STALE


def rules_for(device: Device, point: Point) -> Rules:
    factor, offset = conversion(point.unit, point.quantity)
    try:
        ratio = ratio_factor(point, device.params)
    except DecodeError:  # config validation already refuses this; decoding will say so per poll
        ratio = 1.0
    raw_step = abs(point.scale * ratio * factor)
    exact = point.datatype in _INTEGER_TYPES and point.scale_factor is None  # SunSpec SF varies
    span = WRAP_SPAN.get(point.datatype)
    canonical = get_quantity(point.quantity)
    kwh_counter = bool(point.counter) and canonical.unit == "kWh"
    return Rules(
        counter=bool(point.counter),
        low=None if point.min is None else point.min * factor + offset,
        high=None if point.max is None else point.max * factor + offset,
        span=span * raw_step if span and exact else None,
        step=raw_step if exact else 0.0,
        rated_kw=device.rated_power_kw if kwh_counter else None,
        stale_after=device.stale_after,
    )


class Validator:
    """Per-(meter, quantity) checks; safe to call from the Modbus and MQTT threads at once."""

    def __init__(self, devices: Iterable[Device] = ()) -> None:
        self._rules: dict[tuple[str, str], Rules] = {}
        for device in devices:
            for point in device.points:
                self._rules[(device.id, point.quantity)] = rules_for(device, point)
        self._defaults: dict[str, Rules] = {}
        self._series: dict[tuple[str, str], Series] = {}
        # per meter, its live (non-counter) series: the "is the whole device frozen" question
        self._live: dict[str, dict[str, Series]] = {}
        self._lock = threading.Lock()

    def check(self, readings: list[Reading]) -> list[Reading]:
        """The same readings in the same order, each with any new flags OR-ed into its quality."""
        with self._lock:
            out = []
            for reading in readings:
                flags = self._check_one(reading)
                out.append(replace(reading, quality=int(reading.quality) | flags) if flags else reading)
            return out

    def _rules_of(self, meter_id: str, quantity: str) -> Rules:
        rules = self._rules.get((meter_id, quantity))
        if rules is not None:
            return rules
        # a meter id taken from an MQTT topic, or a reading from elsewhere: quantity defaults
        if quantity not in self._defaults:
            try:
                counter = get_quantity(quantity).counter
            except Exception:
                counter = False
            self._defaults[quantity] = Rules(counter=counter)
        return self._defaults[quantity]

    def _check_one(self, r: Reading) -> int:
        rules = self._rules_of(r.meter_id, r.quantity)
        value = r.value
        flags = 0
        finite = isinstance(value, int | float) and math.isfinite(value)
        if not finite or (rules.low is not None and value < rules.low) or (
                rules.high is not None and value > rules.high):
            flags |= Quality.OUT_OF_RANGE
        if not finite:
            return flags  # says nothing about the meter's history: keep the series as it was
        key = (r.meter_id, r.quantity)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = Series(value, r.time, r.time)
            if not rules.counter:
                self._live.setdefault(r.meter_id, {})[r.quantity] = series
            return flags
        if r.time <= series.time:
            return flags  # out of order or a replayed duplicate: nothing to compare it with
        if rules.counter:
            flags |= self._counter_step(r, rules, series)
        if value != series.value:
            series.changed = r.time
            series.stale = False
        elif self._stale(r, rules, series):
            flags |= Quality.STALE
            series.stale = True
        series.value, series.time = value, r.time
        return flags

    def _counter_step(self, r: Reading, rules: Rules, series: Series) -> int:
        previous = series.value
        kind, _ = counter_step(previous, r.value, rules.span)
        if kind != "count":
            # Every step down is flagged; the energy rules decide what it counts (docs/domain.md).
            what = "counter rolled over" if kind == "rollover" else "counter went down (reset or replaced)"
            log.warning(what,
                        extra={"meter": r.meter_id, "quantity": r.quantity, "previous": previous,
                               "value": r.value})
            return Quality.COUNTER_RESET
        if rules.rated_kw is not None:
            limit = step_limit(rules.rated_kw, (r.time - series.time).total_seconds(), rules.step)
            if r.value - previous > limit:
                log.warning("counter step above rated power", extra={
                    "meter": r.meter_id, "quantity": r.quantity, "step": r.value - previous,
                    "limit": limit, "rated_kw": rules.rated_kw})
                return Quality.SPIKE
        return 0

    def _stale(self, r: Reading, rules: Rules, series: Series) -> bool:
        if rules.stale_after is None:
            return False
        unchanged = (r.time - series.changed).total_seconds()
        if rules.counter:
            live = ((q, s.value, s.stale) for q, s in self._live.get(r.meter_id, {}).items())
            return frozen.counter_frozen(unchanged, rules.stale_after, live)
        return frozen.live_frozen(r.quantity, r.value, unchanged, rules.stale_after)
