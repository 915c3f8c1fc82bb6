from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config
from gateway.plan import describe_plan, plan_reads, resolve_slots

GOOD = """\
gateway: {id: gw-1, site: demo-plant}
buffer: {path: ./var/buffer.db, max_bytes: 2GB}
devices:
  - id: main-incomer
    role: grid_import
    protocol: modbus-tcp
    host: 10.0.0.21
    unit: 1
    poll: 1s
    profile: eastron-sdm630
  - id: line-2-meter
    protocol: modbus-tcp
    host: 10.0.0.22
    unit: 3
    poll: 500ms
    points:
      - {quantity: active_power, table: input, address: 0x34, datatype: float32, unit: W}
      - {quantity: active_energy_import, table: input, address: 0x48, datatype: float32, unit: kWh}
  - id: compressor-1-json
    protocol: mqtt
    topic: factory/compressors/1/telemetry
    points:
      - {quantity: active_power, path: $.power.kw, unit: kW}
      - {quantity: air_flow, path: $.flow, unit: m3/min}
"""


def test_design_example_parses():
    cfg = parse_config(GOOD)
    assert cfg.buffer.max_bytes == 2 * 10**9
    assert [d.id for d in cfg.devices] == ["main-incomer", "line-2-meter", "compressor-1-json"]
    assert cfg.devices[1].poll == 0.5
    assert cfg.devices[0].points[0].quantity == "voltage"  # from the profile
    assert cfg.devices[1].points[1].counter is True  # energy counters are counters by default


def test_unit_that_does_not_fit_names_file_line_device_and_point():
    bad = GOOD.replace("address: 0x48, datatype: float32, unit: kWh", "address: 0x48, unit: kvar")
    with pytest.raises(ConfigError) as err:
        parse_config(bad, "site.yaml")
    message = str(err.value)
    assert message.startswith("site.yaml:18: devices[1] (line-2-meter).points[1]")
    assert "kvar" in message and "active_energy_import" in message


def test_unknown_profile_and_missing_host_are_reported_with_lines():
    bad = GOOD.replace("profile: eastron-sdm630", "profile: no-such-meter").replace(
        "    host: 10.0.0.22\n", "")
    with pytest.raises(ConfigError, match=r"<config>:10: devices\[0\] \(main-incomer\) profile: "
                                          r"unknown profile 'no-such-meter'"):
        parse_config(bad)
    with pytest.raises(ConfigError, match=r":11: devices\[1\] \(line-2-meter\).*needs `host`"):
        parse_config(GOOD.replace("    host: 10.0.0.22\n", ""))


def test_typo_in_a_key_is_refused():
    with pytest.raises(ConfigError, match=r":9: devices\[0\] \(main-incomer\).pol: Extra inputs"):
        parse_config(GOOD.replace("poll: 1s", "pol: 1s"))


def test_duplicate_device_ids_and_bad_durations():
    dup = GOOD.replace("id: line-2-meter", "id: main-incomer")
    with pytest.raises(ConfigError, match="used twice"):
        parse_config(dup)
    with pytest.raises(ConfigError, match=r":15: devices\[1\] \(line-2-meter\).poll: .*not a duration"):
        parse_config(GOOD.replace("poll: 500ms", "poll: soon"))


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("gateway: {id: x\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_plan_merges_nearby_registers_and_splits_far_ones():
    cfg = parse_config(GOOD)
    blocks = plan_reads(resolve_slots(cfg.devices[0]))
    assert [(b.table, b.start, b.count) for b in blocks] == [("input", 0, 8), ("input", 0x34, 24)]
    assert all(b.count <= 125 for b in blocks)
    tight = plan_reads(resolve_slots(cfg.devices[0]), max_registers=125, max_gap=0)
    assert len(tight) > len(blocks)
    capped = plan_reads(resolve_slots(cfg.devices[0]), max_registers=10, max_gap=10)
    assert all(b.count <= 10 for b in capped)
    assert sum(len(b.slots) for b in capped) == len(cfg.devices[0].points)


def test_check_output_lists_function_codes_and_ranges():
    text = describe_plan(parse_config(GOOD))
    assert "FC04 input    0x0034-0x004b (24 regs)" in text
    assert "compressor-1-json  mqtt topic factory/compressors/1/telemetry" in text


def test_uplink_ack_timeout_is_a_duration_above_zero():
    base = ("gateway: {id: g, site: s}\n"
            "sinks: [{type: mqtt, url: 'mqtt://h:1883', ack_timeout: %s}]\n"
            "devices: [{id: d, protocol: mqtt, topic: t, points: [{quantity: voltage, path: $.v}]}]\n")
    assert parse_config(base % "2m").sinks[0].ack_timeout == 120.0
    assert parse_config(base.replace(", ack_timeout: %s", "")).sinks[0].ack_timeout == 30.0
    with pytest.raises(ConfigError, match=r":2: sinks\[0\].ack_timeout: .*longer than 0 s"):
        parse_config(base % "0s")
