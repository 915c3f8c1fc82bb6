"""`lingtan demo` as a new user runs it: embedded PostgreSQL and broker, live dashboard in
headless Chromium, Ctrl-C leaves nothing behind, and a second start reuses the data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.conftest import free_port
from tests.dashboard.browser import (
    chromium,
    collect_console_errors,
    save_screenshot,
    sign_in,
    wait_for_chart_points,
    wait_for_tile_numbers,
)

ROOT = Path(__file__).resolve().parents[2]
READY = "Press Ctrl-C to stop."
# The product's promise: live values on the dashboard within 60 s of `lingtan demo`.
PROMISED_SECONDS = 60


@dataclass
class Demo:
    proc: subprocess.Popen
    output: list[str]
    env: dict[str, str]

    def wait_ready(self, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if any(READY in line for line in self.output):
                return time.monotonic() - started
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError("demo did not become ready:\n" + "".join(self.output))

    def processes(self) -> list[psutil.Process]:
        """The demo, its children, and the embedded PostgreSQL serving its data folder."""
        found = [psutil.Process(self.proc.pid)]
        found += found[0].children(recursive=True)
        data_dir = self.env["LINGTAN_DATA_DIR"]
        for p in psutil.process_iter(["cmdline"]):
            if any(data_dir in part for part in (p.info["cmdline"] or [])) and p not in found:
                found.append(p)
        return found

    def ctrl_c(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)


def start_demo(env: dict[str, str]) -> Demo:
    proc = subprocess.Popen([sys.executable, "-m", "lingtan.cli", "demo"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: output.extend(iter(stream.readline, "")), daemon=True).start()
    return Demo(proc, output, env)


@pytest.fixture
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGTAN_")}
    env.update({
        "LINGTAN_DATA_DIR": str(tmp_path_factory.mktemp("demo-data")),
        "LINGTAN_API_PORT": str(free_port()),
        "LINGTAN_DASHBOARD_PORT": str(free_port()),
        "LINGTAN_SIM_MODBUS_PORT": str(free_port()),
        "LINGTAN_EMBEDDED_MQTT_PORT": str(free_port()),
        "LINGTAN_GATEWAY_METRICS_PORT": str(free_port()),
    })
    yield env


def get_json(url: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return json.loads(r.read())


def printed_key(output: str) -> str:
    found = re.search(r"API key \(admin, shown once\): (lt_\S+)", output)
    assert found, "the first start prints an admin API key:\n" + output
    return found.group(1)


def printed_user(output: str) -> tuple[str, str]:
    found = re.search(r"Sign in +user (\S+), password (\S+) \(engineer, shown once\)", output)
    assert found, "the first start prints a dashboard user and its password:\n" + output
    return found.group(1), found.group(2)


def database_url(data_dir: str) -> str:
    socket_dir = Path(data_dir) / "postgres"
    return f"postgresql://postgres@/lingtan?host={socket_dir}"


def count_readings(data_dir: str) -> tuple[int, object]:
    with psycopg.connect(database_url(data_dir)) as conn:
        row = conn.execute("SELECT count(*), min(time) FROM readings").fetchone()
    assert row is not None
    return row[0], row[1]


def live_rollups(data_dir: str) -> bool:
    """The minute rollups reach the last minute, and no mark is older than 30 s."""
    with psycopg.connect(database_url(data_dir)) as conn:
        row = conn.execute(
            "SELECT (SELECT max(bucket) FROM readings_1m)"
            " >= date_trunc('minute', now()) - interval '1 minute',"
            " NOT EXISTS (SELECT 1 FROM rollup_dirty WHERE bucket < now() - interval '90 seconds')"
        ).fetchone()
    return bool(row and row[0] and row[1])


@pytest.mark.browser
def test_demo_runs_shows_live_numbers_stops_cleanly_and_reuses_its_data(demo_env):
    started = time.monotonic()
    demo = start_demo(demo_env)
    try:
        demo.wait_ready(timeout=120)
        dash = f"http://127.0.0.1:{demo_env['LINGTAN_DASHBOARD_PORT']}/"
        api = f"http://127.0.0.1:{demo_env['LINGTAN_API_PORT']}/api/v1"
        text = "".join(demo.output)
        assert dash in text and api in text  # the URLs are printed
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            errors = collect_console_errors(page)
            sign_in(page, dash.rstrip("/"), *printed_user(text))
            tiles = wait_for_tile_numbers(page, timeout_ms=60_000)
            live_after = time.monotonic() - started
            assert tiles["tile-grid-kw"] != 0 and tiles["tile-load-kw"] > 0
            assert tiles["tile-today-kwh"] >= 0
            traces = wait_for_chart_points(page, timeout_ms=60_000)
            assert len(traces) >= 2
            # a first start backfills the last 24 h: the first page load already shows the day
            assert min(t["values"] for t in traces) > 1000, traces
            save_screenshot(page, "demo-overview.png")
            assert errors == []
        print(f"dashboard live with numbers {live_after:.1f} s after `lingtan demo`")
        assert live_after < PROMISED_SECONDS
        key = printed_key(text)
        overview = get_json(f"{api}/sites/demo-plant/kpis/now", key)
        assert overview["power"]["grid_kw"] is not None and overview["power"]["load_kw"] > 0
        with pytest.raises(urllib.error.HTTPError) as refused:
            get_json(f"{api}/sites/demo-plant/kpis/now")
        assert refused.value.code == 401
        assert refused.value.headers["Content-Type"] == "application/problem+json"
        before_stop = demo.processes()
        assert len(before_stop) >= 6  # demo, simulators, gateway, api, dashboard, postgres
        assert any(p.name() == "postgres" for p in before_stop)
        count_1, first_1 = count_readings(demo_env["LINGTAN_DATA_DIR"])
        assert count_1 > 0
        # the live minutes' rollups catch up too, refreshed by the API process (the gateway marks)
        deadline = time.monotonic() + 30
        while not live_rollups(demo_env["LINGTAN_DATA_DIR"]) and time.monotonic() < deadline:
            time.sleep(1)
        assert live_rollups(demo_env["LINGTAN_DATA_DIR"])
        # the retrofit 28 days ago is measured on the backfilled weeks: an adequate baseline and a
        # saving with its uncertainty (tests/simulators/test_retrofit_savings.py checks it against
        # the simulator's own change)
        vfd = get_json(f"{api}/sites/demo-plant/projects/compressor-1-vfd/savings", key)
        assert vfd["fit"]["adequate"], vfd["fit"]["failed"]
        assert vfd["avoided"] > 0 and vfd["uncertainty"] is not None and vfd["uncertainty_below_half"], vfd
    finally:
        code = demo.ctrl_c()
    assert code == 0, "".join(demo.output)
    assert "done" in "".join(demo.output)
    leftover = [p for p in before_stop if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert leftover == [], (f"processes left behind: {[p.cmdline() for p in leftover]}\n"
                            + "".join(demo.output))

    # started again, it reuses the same database: the old readings are still there
    demo = start_demo(demo_env)
    try:
        demo.wait_ready(timeout=120)
        # the first key is not shown again (only its hash is stored), but it still works
        assert "lingtan keys create --role viewer" in "".join(demo.output)
        assert "lingtan users password energy.manager" in "".join(demo.output)  # nor the password
        assert "shown once" not in "".join(demo.output)
        assert get_json(f"{api}/sites", key)["items"][0]["id"] == "demo-plant"
        count_2, first_2 = count_readings(demo_env["LINGTAN_DATA_DIR"])
        assert first_2 == first_1 and count_2 >= count_1
        time.sleep(3)
        assert count_readings(demo_env["LINGTAN_DATA_DIR"])[0] > count_2  # and keeps adding
        before_stop = demo.processes()
    finally:
        assert demo.ctrl_c() == 0
    assert [p for p in before_stop if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_a_taken_port_is_named_with_the_setting_that_moves_it(demo_env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", int(demo_env["LINGTAN_API_PORT"])))
        s.listen()
        proc = subprocess.run([sys.executable, "-m", "lingtan.cli", "demo"], cwd=ROOT,
                              env=demo_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"port {demo_env['LINGTAN_API_PORT']}" in proc.stdout
    assert "LINGTAN_API_PORT" in proc.stdout


def live_sub_meters(data_dir: str) -> int:
    """Sub-meters (meters without a role, counted by the structure) with a live energy reading."""
    with psycopg.connect(database_url(data_dir)) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT l.meter_id) FROM latest_readings l JOIN meters m ON m.id = l.meter_id"
            " WHERE m.role IS NULL AND l.quantity = 'active_energy_import'"
            " AND l.time > now() - interval '30 seconds'").fetchone()
    return row[0] if row else 0


def test_the_demo_plant_has_its_structure_and_its_sub_meters_report(demo_env):
    from lingtan.core.structure_schema import Structure
    from simulators.site import MODBUS_SUBMETERS, MQTT_SUBMETERS

    demo = start_demo(demo_env)
    try:
        demo.wait_ready(timeout=120)
        data_dir = demo_env["LINGTAN_DATA_DIR"]
        with psycopg.connect(database_url(data_dir)) as conn:
            row = conn.execute(
                "SELECT structure FROM site_structures WHERE site_id = 'demo-plant'").fetchone()
        assert row is not None
        structure = Structure.model_validate(row[0])
        assert sum(n.department for n in structure.nodes) == 4 and structure.price_for(2026) is not None
        # over both transports: the feeders' SDM630s on the Modbus bus, the rest over MQTT
        deadline = time.monotonic() + 60
        while live_sub_meters(data_dir) < 30 and time.monotonic() < deadline:
            time.sleep(1)
        assert live_sub_meters(data_dir) >= 30 and len(MODBUS_SUBMETERS) + len(MQTT_SUBMETERS) >= 30
    finally:
        code = demo.ctrl_c()
    assert code == 0, "".join(demo.output)
