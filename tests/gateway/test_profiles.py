"""Device profiles: CT/PT ratios, 300 templated meters, extends, site profile folders, errors."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.collectors.modbus import decode_block
from gateway.config import ConfigError, load_config, parse_config
from gateway.decode import DecodeError, to_canonical
from gateway.plan import plan_reads, resolve_slots
from gateway.profiles import load_profile

AT = datetime(2026, 11, 20, tzinfo=UTC)


def decode(device, registers: dict[int, int]) -> dict[str, float]:
    """Decode a device's whole read plan from a sparse register map (missing registers are 0)."""
    out = {}
    for block in plan_reads(resolve_slots(device)):
        words = [registers.get(block.start + i, 0) for i in range(block.count)]
        out.update({r.quantity: r.value for r in decode_block(device, block, words, AT)})
    return out


def three_hundred_meters() -> str:
    lines = ["gateway: {id: gw-1, site: plant}", "devices:"]
    # one short line per meter: what a field engineer pastes from the panel schedule
    lines += [f"  - {{id: m{i:03d}, host: 10.0.{i // 32}.1, unit: {i % 32 + 1}, profile: acrel-adl400,"
              f" params: {{ct_ratio: {i + 1}}}}}" for i in range(300)]
    return "\n".join(lines) + "\n"


def test_three_hundred_adl400_meters_each_with_its_own_ct_ratio():
    cfg = parse_config(three_hundred_meters())
    assert len(cfg.devices) == 300
    for i, device in enumerate(cfg.devices):
        assert device.protocol == "modbus-tcp"  # from the profile's defaults
        assert device.params == {"ct_ratio": i + 1, "pt_ratio": 1}  # pt_ratio from the profile
    # params are per device, not shared through the profile
    cfg.devices[0].params["ct_ratio"] = 999
    assert cfg.devices[1].params["ct_ratio"] == 2
    # Ia = 5.00 A secondary (raw 500 × 0.01), forward energy 123.45 kWh secondary (raw 12345)
    registers = {0x61: 2300, 0x64: 500, 0x0A: 0, 0x0B: 12345, 0x16A: 0, 0x16B: 1000, 0x17F: 950}
    m040 = decode(cfg.devices[39], registers)  # ct_ratio 40, e.g. a 200/5 A CT
    assert m040["current"] == pytest.approx(200.0)
    assert m040["voltage"] == pytest.approx(230.0)  # pt_ratio 1
    assert m040["active_energy_import"] == pytest.approx(123.45 * 40)
    assert m040["active_power"] == pytest.approx(1.0 * 40)  # 1000 W secondary → 40 kW
    assert m040["power_factor"] == pytest.approx(0.95)  # no ratio on a ratio
    assert decode(cfg.devices[299], registers)["current"] == pytest.approx(5.0 * 300)


def test_pt_and_ct_ratios_multiply_into_power_and_energy():
    cfg = parse_config("""
gateway: {id: gw, site: s}
devices:
  - {id: hv-incomer, host: 10.0.0.1, profile: acrel-adl400, params: {ct_ratio: 60, pt_ratio: 100}}
""")
    got = decode(cfg.devices[0], {0x61: 1000, 0x64: 250, 0x16A: 0, 0x16B: 1500, 0x0B: 100})
    assert got["voltage"] == pytest.approx(100.0 * 100)  # 100 V secondary of a 10 kV/100 V PT
    assert got["current"] == pytest.approx(2.5 * 60)
    assert got["active_power"] == pytest.approx(1.5 * 60 * 100)  # kW
    assert got["active_energy_import"] == pytest.approx(1.0 * 60 * 100)  # kWh


def test_gas_meter_pulses_times_pulse_weight():
    cfg = parse_config("""
gateway: {id: gw, site: s}
devices:
  - {id: boiler-gas, host: 10.0.0.1, profile: generic-gas-meter, params: {pulse_weight: 0.1}}
""")
    device = cfg.devices[0]
    assert [p.quantity for p in device.points] == ["gas_volume", "gas_flow"]
    assert device.points[0].counter is True
    got = decode(device, {0: 0x0001, 1: 0x0000, 2: 0x42C8, 3: 0x0000})  # 65536 pulses; 100.0 m³/h
    assert got["gas_volume"] == pytest.approx(6553.6)
    assert got["gas_flow"] == pytest.approx(100.0)


def test_to_canonical_takes_params_by_keyword_and_refuses_to_guess_a_missing_one():
    point = parse_config("""
gateway: {id: gw, site: s}
devices: [{id: m, host: h, profile: acrel-adl400}]
""").devices[0].points[1]
    assert point.quantity == "current"
    assert to_canonical(point, 500, params={"ct_ratio": 40}) == pytest.approx(200.0)
    with pytest.raises(DecodeError, match="current needs device param 'ct_ratio'"):
        to_canonical(point, 500)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_site_profile_extends_a_builtin_one_and_overrides_one_point(tmp_path: Path):
    # a firmware variant with forward energy as float32 kWh at 0x0100; everything else as ADL400
    write(tmp_path / "site" / "profiles" / "adl400-fw2.yaml", """
description: ADL400 firmware with float energy registers
extends: acrel-adl400
params: {pt_ratio: 1}
points:
  - {quantity: active_energy_import, address: 0x100, datatype: float32, unit: kWh,
     ratios: [ct_ratio, pt_ratio]}
""")
    config = write(tmp_path / "site" / "gateway.yaml", """
gateway: {id: gw, site: s}
profile_dirs: [profiles]
devices:
  - {id: m1, host: 10.0.0.1, profile: adl400-fw2, params: {ct_ratio: 10}}
""")
    device = load_config(config).devices[0]
    by_quantity = {p.quantity: p for p in device.points}
    assert len(device.points) == len(load_profile("acrel-adl400").points)
    assert (by_quantity["active_energy_import"].address, by_quantity["active_energy_import"].datatype) \
        == (0x100, "float32")
    assert by_quantity["active_energy_export"].address == 0x14  # inherited unchanged
    assert device.params == {"ct_ratio": 10, "pt_ratio": 1}
    got = decode(device, {0x100: 0x42C8, 0x101: 0x0000, 0x64: 100})  # 100.0 kWh; 1.00 A
    assert got["active_energy_import"] == pytest.approx(1000.0)
    assert got["current"] == pytest.approx(10.0)


def test_a_site_profile_folder_is_found_relative_to_the_config_file(tmp_path: Path, monkeypatch):
    write(tmp_path / "site" / "my-profiles" / "line-meter.yaml", """
description: the plant's own sub-meter
defaults: {protocol: modbus-tcp, poll: 2s}
points:
  - {quantity: active_power, table: input, address: 0, datatype: float32, unit: kW}
""")
    config = write(tmp_path / "site" / "gateway.yaml", """
gateway: {id: gw, site: s}
profile_dirs: [my-profiles]
devices:
  - {id: line-1, host: 10.0.0.1, profile: line-meter}
""")
    monkeypatch.chdir(tmp_path)  # not the config's folder: the path must follow the config file
    device = load_config(config).devices[0]
    assert device.poll == 2.0
    assert [(p.quantity, p.table, p.unit) for p in device.points] == [("active_power", "input", "kW")]


def site_with(tmp_path: Path, profile: str, profiles: dict[str, str]) -> Path:
    for name, text in profiles.items():
        write(tmp_path / "profiles" / f"{name}.yaml", text)
    return write(tmp_path / "gateway.yaml", f"""\
gateway: {{id: gw, site: s}}
profile_dirs: [profiles]
devices:
  - {{id: ok-meter, host: 10.0.0.1, profile: acrel-adl400}}
  - {{id: bad-meter, host: 10.0.0.2, protocol: modbus-tcp, profile: {profile}}}
""")


def test_unknown_profile_names_file_line_device_and_what_exists(tmp_path: Path):
    config = site_with(tmp_path, "acrel-adl4000", {})
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value).startswith(f"{config}:5: devices[1] (bad-meter) profile: "
                                     "unknown profile 'acrel-adl4000' (available: acrel-adl400,")


def test_a_profile_extending_itself_is_refused_with_the_chain(tmp_path: Path):
    config = site_with(tmp_path, "loop-a", {
        "loop-a": "extends: loop-b\npoints: [{quantity: voltage, address: 1}]\n",
        "loop-b": "extends: loop-a\npoints: [{quantity: current, address: 2}]\n",
    })
    where = re.escape(str(config))
    with pytest.raises(ConfigError, match=rf"^{where}:5: devices\[1\] \(bad-meter\) profile: "
                                          r"profile 'loop-a' extends itself \(loop-a → loop-b → loop-a\)"):
        load_config(config)
    direct = site_with(tmp_path, "selfish", {
        "selfish": "extends: selfish\npoints: [{quantity: voltage, address: 1}]\n"})
    with pytest.raises(ConfigError, match=r"profile 'selfish' extends itself"):
        load_config(direct)


def test_a_point_needing_a_missing_param_names_device_point_and_param(tmp_path: Path):
    config = site_with(tmp_path, "ct-meter", {
        "ct-meter": "points: [{quantity: current, address: 2, unit: A, ratios: [ct_ratio]}]\n"})
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(config))}:5: devices\[1\] \(bad-meter\): "
                                          r"points\[0\] \(current\) needs params \['ct_ratio'\]"):
        load_config(config)
