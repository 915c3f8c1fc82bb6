"""Validation flags readings (reset, spike, range, stale) and never changes or drops them."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.runtime import Gateway
from gateway.validate import Validator
from lingtan.core.energy import SPIKE_FACTOR
from lingtan.kernel.db import libpq_url
from lingtan.kernel.mqtt import make_client
from lingtan.kernel.reading import Quality, Reading
from tests.conftest import free_port

T0 = datetime(2026, 11, 20, tzinfo=UTC)
GOOD, STALE, RANGE = Quality.GOOD, Quality.STALE, Quality.OUT_OF_RANGE
RESET, SPIKE, ESTIMATED = Quality.COUNTER_RESET, Quality.SPIKE, Quality.ESTIMATED

RATED_KW = 100.0
STEP_KWH = 0.01  # one raw step of the uint32 ×0.01 kWh register below
SPAN_KWH = 2**32 * STEP_KWH  # where that register wraps to 0

CFG = parse_config(f"""
gateway: {{id: gw, site: s}}
devices:
  - id: meter
    protocol: modbus-tcp
    host: 10.0.0.1
    rated_power_kw: {RATED_KW}
    stale_after: 60s
    points:
      - {{quantity: active_energy_import, address: 0, datatype: uint32, scale: {STEP_KWH}, unit: kWh}}
      - {{quantity: active_power, address: 2, datatype: float32, unit: W, max: 50000}}
      - {{quantity: voltage, address: 4, datatype: uint16, scale: 0.1, unit: V, min: 0, max: 300}}
      - {{quantity: state, address: 5, datatype: uint16}}
  - id: gas
    host: 10.0.0.1
    stale_after: 60s
    profile: generic-gas-meter
  - id: hv
    host: 10.0.0.1
    profile: acrel-adl400
    params: {{ct_ratio: 40}}
""")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(validator: Validator, meter: str, quantity: str, series: list[tuple[float, float]]) -> list[int]:
    """Quality of each (seconds, value) reading, fed one poll at a time."""
    return [validator.check([Reading(at(s), meter, quantity, v)])[0].quality for s, v in series]


# -- counters: property-based -------------------------------------------------------------

EVENT = st.tuples(st.sampled_from(["step", "step", "step", "spike", "reset", "late"]),
                  st.floats(0, 1), st.floats(1, 600))


def counter_story(start: float, events: list[tuple[str, float, float]]
                  ) -> tuple[list[Reading], list[int]]:
    """A uint32 kWh register read over time, with injected events and the flags they must get.

    Normal steps stay within rated power × elapsed time (2/3 of the spike limit); a spike is at
    least twice the limit; a reset drops below the last value; crossing the register's top
    wraps it (a rollover); a late reading arrives with a time not after the newest one.
    """
    t, value = 0.0, start
    readings = [Reading(at(t), "meter", "active_energy_import", value)]
    expected = [GOOD]
    for kind, u, dt in events:
        if kind == "late":  # anything may arrive late; it is not compared with the present
            readings.append(Reading(at(t - dt * u), "meter", "active_energy_import", u * SPAN_KWH))
            expected.append(GOOD)
            continue
        t += dt
        hours = dt / 3600
        limit = RATED_KW * hours * SPIKE_FACTOR + STEP_KWH
        if kind == "step":
            new = value + u * RATED_KW * hours
        elif kind == "spike":
            new = value + limit * (2 + 100 * u)
        else:
            new = value * u * 0.999
        if new >= SPAN_KWH:
            new -= SPAN_KWH  # rollover
        flag = RESET if new < value else SPIKE if kind == "spike" else GOOD
        readings.append(Reading(at(t), "meter", "active_energy_import", new))
        expected.append(flag)
        value = new
    return readings, expected


@settings(max_examples=300, deadline=None)
@given(start=st.one_of(st.floats(0, 1e6), st.floats(SPAN_KWH - 300, SPAN_KWH - STEP_KWH)),
       events=st.lists(EVENT, max_size=80), batch=st.integers(1, 7))
def test_counter_flags_are_exactly_the_injected_events(start, events, batch):
    readings, expected = counter_story(start, events)
    validator = Validator(CFG.devices)
    out: list[Reading] = []
    for i in range(0, len(readings), batch):  # however the collector batches its polls
        out.extend(validator.check(readings[i:i + batch]))
    assert [r.value for r in out] == [r.value for r in readings]
    assert [(r.time, r.meter_id, r.quantity) for r in out] == \
           [(r.time, r.meter_id, r.quantity) for r in readings]
    assert [Quality(r.quality) for r in out] == expected


QUANTITY = st.sampled_from(["active_energy_import", "active_power", "voltage", "state", "gas_volume",
                            "gas_flow", "current", "power_factor", "no_such_quantity"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["meter", "gas", "hv", "unknown-meter"]), QUANTITY,
                          st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                          st.sampled_from([GOOD, ESTIMATED, Quality.NOT_IMPLEMENTED])),
                max_size=60))
def test_any_input_is_kept_as_is_and_never_raises(rows):
    readings = [Reading(at(s), m, q, v, flag) for m, q, s, v, flag in rows]
    out = Validator(CFG.devices).check(readings)
    assert len(out) == len(readings)
    for before, after in zip(readings, out, strict=True):
        assert (after.time, after.meter_id, after.quantity) == (before.time, before.meter_id, before.quantity)
        assert after.value == before.value or (math.isnan(after.value) and math.isnan(before.value))
        assert after.quality & before.quality == before.quality  # the collector's flags stay
        if not math.isfinite(before.value):
            assert after.quality & RANGE


# -- counters: examples ------------------------------------------------------------------------

def test_rollover_reset_and_spike_examples():
    v = Validator(CFG.devices)
    top = SPAN_KWH - 0.5
    assert run(v, "meter", "active_energy_import", [
        (0, top), (60, top + 0.4),   # 0.4 kWh in a minute at 100 kW rated: fine (limit 2.51)
        (120, 0.3),                  # wrapped past 2^32 × 0.01 kWh
        (180, 1.0), (240, 0.0),      # meter cleared
        (300, 1000.0),               # 1000 kWh in a minute: the classic spike
        (360, 1001.0),               # counting on from the new level
    ]) == [GOOD, GOOD, RESET, GOOD, RESET, SPIKE, GOOD]


def test_no_spike_check_without_rated_power_and_one_register_step_is_always_allowed():
    v = Validator(CFG.devices)
    # the hv meter has no rated power: any rise is energy
    assert run(v, "hv", "active_energy_import", [(0, 0.0), (1, 5000.0)]) == [GOOD, GOOD]
    # 10 ms apart, one 0.01 kWh step: far above 100 kW × 10 ms, but it is the register's resolution
    assert run(v, "meter", "active_energy_import", [(0, 5.0), (0.01, 5.01)]) == [GOOD, GOOD]


# -- range ---------------------------------------------------------------------------------------

def test_out_of_range_uses_the_points_unit_and_keeps_other_flags():
    v = Validator(CFG.devices)
    # max: 50000 W on a point stored in kW
    assert run(v, "meter", "active_power", [(0, 50.0), (1, 50.1), (2, -1.0)]) == [GOOD, RANGE, GOOD]
    assert run(v, "meter", "voltage", [(0, 230.0), (1, -0.1), (2, 300.5)]) == [GOOD, RANGE, RANGE]
    # the ADL400 profile bounds the power factor to [-1, 1]; no ratio applies to it
    assert run(v, "hv", "power_factor", [(0, 0.95), (1, -1.0), (2, 1.2)]) == [GOOD, GOOD, RANGE]
    got = v.check([Reading(at(3), "meter", "voltage", float("nan"), ESTIMATED)])
    assert got[0].quality == RANGE | ESTIMATED and math.isnan(got[0].value)


def test_not_a_number_does_not_disturb_the_counter_state():
    v = Validator(CFG.devices)
    assert run(v, "meter", "active_energy_import", [(0, 10.0), (60, math.inf), (120, 10.5)]) \
        == [GOOD, RANGE, GOOD]


# -- stale --------------------------------------------------------------------------------------

def test_a_frozen_value_is_stale_after_stale_after_until_it_moves():
    v = Validator(CFG.devices)
    polls = [(s, 231.5) for s in range(0, 100, 10)] + [(100, 231.6), (110, 231.6)]
    assert run(v, "meter", "voltage", polls) == [GOOD] * 7 + [STALE] * 3 + [GOOD, GOOD]


def test_idle_zero_and_enum_states_are_not_stale():
    v = Validator(CFG.devices)
    assert set(run(v, "meter", "active_power", [(s, 0.0) for s in range(0, 600, 10)])) == {GOOD}
    assert set(run(v, "meter", "state", [(s, 2.0) for s in range(0, 600, 10)])) == {GOOD}
    # no stale_after on the device: no stale checks at all
    assert set(run(v, "hv", "current", [(s, 40.0) for s in range(0, 600, 10)])) == {GOOD}


def test_a_flat_counter_is_stale_only_when_the_whole_device_is_frozen():
    v = Validator(CFG.devices)
    polls = range(0, 200, 10)
    # night: no consumption, but the voltage still moves in its last digit
    got = [v.check([Reading(at(s), "meter", "voltage", 230.0 + (s // 10) % 2 / 10),
                    Reading(at(s), "meter", "active_energy_import", 500.0)]) for s in polls]
    assert {r.quality for batch in got for r in batch} == {GOOD}
    # the meter freezes: every value repeats with fresh timestamps
    got = [v.check([Reading(at(s), "meter", "voltage", 230.0),
                    Reading(at(s), "meter", "active_energy_import", 500.0)]) for s in range(200, 400, 10)]
    voltage, energy = [[Quality(b[i].quality) for b in got] for i in (0, 1)]
    assert voltage == [GOOD] * 7 + [STALE] * 13
    # the counter follows as soon as the live value is judged stale: in the same poll here, as
    # the voltage comes first in the batch; one poll later when it comes after
    assert energy == [GOOD] * 7 + [STALE] * 13


def test_a_device_with_only_an_idle_flow_never_gets_a_stale_counter():
    v = Validator(CFG.devices)
    got = [v.check([Reading(at(s), "gas", "gas_flow", 0.0), Reading(at(s), "gas", "gas_volume", 42.0)])
           for s in range(0, 600, 10)]
    assert {r.quality for batch in got for r in batch} == {GOOD}


# -- threads -------------------------------------------------------------------------------------

def test_two_collector_threads_at_once():
    v = Validator(CFG.devices)
    errors: list[BaseException] = []
    flagged: list[int] = []

    def collector(meter: str) -> None:
        try:
            for i in range(2000):
                out = v.check([Reading(at(i), meter, "active_energy_import", (i % 500) * 0.01),
                               Reading(at(i), meter, "voltage", 230.0 + i % 3)])
                flagged.extend(r.quality for r in out)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=collector, args=(m,)) for m in ("meter", "meter-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # each meter's counter went down 3 times (at 500, 1000, 1500); nothing else was wrong
    assert sorted(q for q in flagged if q) == [RESET] * 6


# -- through the real gateway into PostgreSQL ----------------------------------------------------

def fetch(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql).fetchall()


def test_flags_reach_postgres_through_the_gateway(db, mqtt_broker, tmp_path: Path):
    mqtt_url, protocol = mqtt_broker
    topic = f"test/{uuid.uuid4().hex}/pf"
    cfg = parse_config(f"""
gateway: {{id: gw-validate, site: plant}}
buffer: {{path: {tmp_path / 'buffer.db'}}}
devices:
  - {{id: incomer, host: 127.0.0.1, port: {free_port()}, profile: acrel-adl400, rated_power_kw: 10}}
  - id: line-pf
    protocol: mqtt
    topic: {topic}
    points: [{{quantity: power_factor, path: $.pf, min: -1, max: 1}}]
""")
    gateway = Gateway(cfg, db, mqtt_url, protocol)
    publisher, address = make_client(mqtt_url, protocol)
    publisher.connect(address.host, address.port)
    publisher.loop_start()
    try:
        gateway.start()
        assert gateway.mqtt is not None and gateway.mqtt.subscribed.wait(10)
        # what the Modbus collector would emit: a reset, then a spike (10 kW rated, 1 min apart)
        gateway.emit([Reading(at(60 * i), "incomer", "active_energy_import", v)
                      for i, v in enumerate([100.0, 100.1, 0.2, 50.0])])
        gateway.emit([Reading(at(0), "incomer", "power_factor", 1.5)])
        for pf in (0.9, 1.7):  # the MQTT path goes through the same validation
            publisher.publish(topic, json.dumps({"pf": pf}), qos=1).wait_for_publish(5)
        want = [("incomer", "active_energy_import", 100.0, 0), ("incomer", "active_energy_import", 100.1, 0),
                ("incomer", "active_energy_import", 0.2, int(RESET)),
                ("incomer", "active_energy_import", 50.0, int(SPIKE)),
                ("incomer", "power_factor", 1.5, int(RANGE)),
                ("line-pf", "power_factor", 0.9, 0), ("line-pf", "power_factor", 1.7, int(RANGE))]
        sql = "SELECT meter_id, quantity, value, quality FROM readings ORDER BY meter_id, quantity, time"
        deadline = time.monotonic() + 20
        while fetch(db, sql) != want and time.monotonic() < deadline:
            time.sleep(0.2)
        assert fetch(db, sql) == want
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        gateway.stop()
