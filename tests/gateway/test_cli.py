import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lingtan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_check_prints_the_read_plan_of_the_compose_gateway():
    out = lingtan("gateway", "check", "--config", str(ROOT / "deploy" / "gateway.yaml"))
    assert out.returncode == 0, out.stderr
    assert "grid-incomer  modbus-tcp simulators:5020 unit 1" in out.stdout
    assert "FC04 input    0x0000-0x0007 (8 regs)  voltage, current" in out.stdout
    assert "line-1  mqtt topic demo-plant/line-1/telemetry" in out.stdout


def test_check_reports_a_bad_config_with_file_line_and_field(tmp_path):
    bad = tmp_path / "gw.yaml"
    bad.write_text(
        "gateway: {id: gw, site: s}\n"
        "devices:\n"
        "  - id: m1\n"
        "    protocol: modbus-tcp\n"
        "    host: 10.0.0.1\n"
        "    points:\n"
        "      - {quantity: active_power, address: 1, datatype: float33}\n"
    )
    out = lingtan("gateway", "check", "--config", str(bad))
    assert out.returncode == 2
    assert f"{bad}:7: devices[0] (m1).points[0] (active_power).datatype" in out.stderr
    assert "Traceback" not in out.stderr
