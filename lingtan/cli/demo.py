"""`lingtan demo`: the whole system on one machine, with embedded defaults.

Starts (or uses the configured) PostgreSQL and MQTT broker, applies migrations, then runs the
simulators, gateway, API and dashboard as child processes; the gateway only marks the rollup
buckets it writes, and the API process refreshes them, as in a single-site install. Ctrl-C
stops every child and the embedded servers, and exits 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

import psycopg
import yaml

from lingtan.cli.embedded import EmbeddedBroker, EmbeddedPostgres
from lingtan.core.savings_schema import Savings
from lingtan.kernel import clock
from lingtan.kernel.db import libpq_url
from lingtan.kernel.migrate import upgrade
from lingtan.kernel.settings import Settings

DEMO_SITE = {
    "id": "demo-plant",
    "name": "Demo plant, Shenyang",
    "timezone": "Asia/Shanghai",
    "grid_region": "north_east",
}
# The demo site's energy model (meter roles, tariffs, green power); a source checkout has it,
# an installed wheel does not ship deploy/.
DEMO_SITE_FILE = Path(__file__).resolve().parents[2] / "deploy" / "site-demo-plant.yaml"


class DemoError(RuntimeError):
    """A start-up problem with a message meant for the person at the terminal."""


class Interrupted(Exception):
    """Ctrl-C while starting up."""


_stop = threading.Event()


def say(text: str, end: str = "\n") -> None:
    print(text, end=end, flush=True)


def step(label: str, action: Callable[[], object]) -> object:
    say(f"  {label} …", end=" ")
    started = time.monotonic()
    result = action()
    say(f"ok ({time.monotonic() - started:.1f} s)")
    return result


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(settings: Settings) -> None:
    wanted = [
        (settings.api_host, settings.api_port, "API", "LINGTAN_API_PORT"),
        (settings.dashboard_host, settings.dashboard_port, "dashboard", "LINGTAN_DASHBOARD_PORT"),
        (settings.sim_host, settings.sim_modbus_port, "Modbus simulator", "LINGTAN_SIM_MODBUS_PORT"),
        ("127.0.0.1", settings.gateway_metrics_port, "gateway metrics", "LINGTAN_GATEWAY_METRICS_PORT"),
    ]
    if not settings.mqtt_url:
        wanted.append(("127.0.0.1", settings.embedded_mqtt_port, "embedded MQTT broker",
                       "LINGTAN_EMBEDDED_MQTT_PORT"))
    for host, port, what, env in wanted:
        if port_in_use(host, port):
            raise DemoError(
                f"port {port} on {host} is already in use, so the {what} cannot start.\n"
                f"Stop whatever holds it, or choose another port, e.g. {env}={port + 1} lingtan demo"
            )


def ensure_database(server_url: str, name: str = "lingtan") -> str:
    """The demo's own database on ``server_url``'s server, created if missing."""
    from sqlalchemy.engine import make_url

    with psycopg.connect(libpq_url(server_url), autocommit=True, connect_timeout=10) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(libpq_url(server_url)).set(database=name).render_as_string(hide_password=False)


def ensure_demo_site(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(
            "INSERT INTO sites (id, name, timezone, grid_region) VALUES (%(id)s, %(name)s,"
            " %(timezone)s, %(grid_region)s) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
            " timezone = EXCLUDED.timezone, grid_region = EXCLUDED.grid_region",
            DEMO_SITE,
        )


def ensure_demo_key(database_url: str) -> str | None:
    """An admin API key named "demo" on the first start; None when one already exists, because
    only a key's hash is stored and the old one cannot be shown again."""
    import sqlalchemy as sa

    from lingtan.core.keys import create_key
    from lingtan.kernel.db import get_engine

    with get_engine(database_url).begin() as conn:
        exists = conn.execute(sa.text(
            "SELECT 1 FROM api_keys WHERE name = 'demo' AND role = 'admin' AND revoked_at IS NULL"
        )).first()
        return None if exists else create_key(conn, "admin", "demo")[1]


DEMO_USER = "energy.manager"


def ensure_demo_user(database_url: str) -> tuple[str, str] | None:
    """(name, password) of a dashboard user made on the first start, when there are no users
    yet; None otherwise: only the password's hash is stored, so it cannot be shown again, and a
    site that made its own users does not want a demo account among them."""
    import secrets

    import sqlalchemy as sa

    from lingtan.core.users import create_user
    from lingtan.kernel.db import get_engine

    with get_engine(database_url).begin() as conn:
        if conn.execute(sa.text("SELECT 1 FROM users LIMIT 1")).first():
            return None
        password = secrets.token_urlsafe(12)  # 96 random bits, 16 characters to type
        create_user(conn, DEMO_USER, password, "engineer")
        return DEMO_USER, password


def demo_user_exists(database_url: str) -> bool:
    from lingtan.core.users import get_user
    from lingtan.kernel.db import get_engine

    with get_engine(database_url).connect() as conn:
        return get_user(conn, DEMO_USER) is not None


# A sub-meter's counter and power: on the SDM630 map (one read across the 18 registers between
# them) or in its IoT module's JSON.
SUBMETER_MODBUS_POINTS = [
    {"quantity": "active_power", "table": "input", "address": 0x34, "datatype": "float32", "unit": "W"},
    {"quantity": "active_energy_import", "table": "input", "address": 0x48, "datatype": "float32",
     "unit": "kWh"},
]
SUBMETER_MQTT_POINTS = [
    {"quantity": "active_power", "path": "$.power_kw", "unit": "kW"},
    {"quantity": "active_energy_import", "path": "$.energy_kwh", "unit": "kWh"},
]


def gateway_config(settings: Settings, demo_dir: Path) -> dict:
    """The demo site's gateway config: the plant's six Modbus meters and its feeders' and utilities'
    sub-meters on one bus; the line and the workshops' and offices' sub-meters over MQTT."""
    from simulators.mqtt_publisher import topic_for
    from simulators.registers import UNIT_OF
    from simulators.site import LINE, MODBUS_SUBMETERS, MQTT_SUBMETERS

    host, port = settings.sim_host, settings.sim_modbus_port

    def modbus(device_id: str, role: str, unit: int, poll: str, profile: str) -> dict:
        return {"id": device_id, "role": role, "protocol": "modbus-tcp", "host": host,
                "port": port, "unit": unit, "poll": poll, "profile": profile}

    def modbus_submeter(meter: str) -> dict:
        return {"id": meter, "protocol": "modbus-tcp", "host": host, "port": port, "unit": UNIT_OF[meter],
                "poll": "5s", "max_gap": 20, "points": SUBMETER_MODBUS_POINTS}

    def mqtt_submeter(meter: str) -> dict:
        return {"id": meter, "protocol": "mqtt", "topic": topic_for(meter), "timestamp": {"path": "$.ts"},
                "points": SUBMETER_MQTT_POINTS}

    return {
        "gateway": {"id": "demo-gw-1", "site": DEMO_SITE["id"], "site_name": DEMO_SITE["name"]},
        "health": {"listen": f"127.0.0.1:{settings.gateway_metrics_port}"},
        "buffer": {"path": str(demo_dir / "buffer.db"), "max_bytes": "1GB"},
        "sinks": [{"type": "postgres"}],
        "devices": [
            modbus("grid-incomer", "grid_import", 1, "1s", "eastron-sdm630"),
            modbus("pv-inverter", "pv_generation", 2, "2s", "sunspec-inverter"),
            modbus("compressor-1", "compressor", 3, "2s", "generic-screw-compressor"),
            modbus("compressor-2", "compressor", 4, "2s", "generic-screw-compressor"),
            modbus("boiler", "boiler_fuel", 5, "5s", "generic-gas-boiler"),
            modbus("heat-recovery", "heat_recovery", 6, "5s", "tuf2000m-heat"),
            *(modbus_submeter(m) for m in MODBUS_SUBMETERS),
            {
                "id": LINE,
                "role": "production",
                "protocol": "mqtt",
                "topic": topic_for(LINE),
                "timestamp": {"path": "$.ts"},
                "points": [
                    {"quantity": "production_count", "path": "$.count", "unit": "units"},
                    {"quantity": "active_power", "path": "$.power_kw", "unit": "kW"},
                ],
            },
            *(mqtt_submeter(m) for m in MQTT_SUBMETERS),
        ],
    }


# The past day is stepped 5 s at a time: the same plant (its noise is exact for any step, the
# compressors' control resolves 10-s substeps anyway) at a third of the cost of 1-s steps.
BACKFILL_STEP_S = 5
COMPRESSOR_1_METER = "compressor-1"  # the demo site file's meter of the lead compressor
# Compressor 1 goes to variable speed this many days before the first start (unless
# LINGTAN_SIM_RETROFIT_DATE names the day), and the history reaches BASELINE_DAYS before that:
# eight weeks of daily energy against production for the retrofit's baseline, four after it
# (docs/domain.md "Compressed air").
RETROFIT_DAYS_AGO = 28
BASELINE_DAYS = 56
MAX_RETROFIT_DAYS_AGO = 365  # a year and eight weeks of history is as long as a first start may take
# Before the last day the history holds only the series the retrofit's savings are measured on,
# sampled every 15 min (the longest gap whose energy is still placed in time, rule 3 of
# lingtan/core/energy.py) and stepped 5 min at a time: 12 weeks in about 2 s. The coarse steps
# round the line's short stoppages up to whole steps, about 1 % less production than the last
# day's 5-s steps; before and after the retrofit alike.
OLDER_SAMPLE_S = 900
OLDER_STEP_S = 300


def retrofit_day(settings: Settings, now: datetime) -> date:
    """The local day compressor 1 goes to variable speed: the configured one, or RETROFIT_DAYS_AGO
    before ``now``'s local day."""
    from simulators.site import local_day

    if settings.sim_retrofit_date is not None:
        return settings.sim_retrofit_date
    return local_day(now) - timedelta(days=RETROFIT_DAYS_AGO)


def record_savings(database_url: str, s: Savings) -> None:
    from lingtan.core.savings_service import save_savings
    from lingtan.kernel.db import get_engine

    with get_engine(database_url).begin() as conn:
        save_savings(conn, DEMO_SITE["id"], s, "lingtan demo", clock.now())


def demo_savings(day: date) -> Savings:
    """The demo's retrofit project and compressor 1's energy baseline, dated around the retrofit day
    (docs/domain.md "Baselines and savings"): the eight weeks before it are the baseline, the day
    before it and the day itself the installation, the days after it the reporting period; option B,
    compressor 1's own meter, regressed on the line's production."""
    variables = [{"name": "production", "source": "production"}]
    baseline = {"start": day - timedelta(days=BASELINE_DAYS), "end": day - timedelta(days=2)}
    return Savings.model_validate({
        "energy_baselines": [{
            "id": "compressor-1-energy", "name": "Compressor 1 energy against production",
            "boundary": {"meters": [COMPRESSOR_1_METER]}, "baseline": baseline, "variables": variables}],
        "projects": [{
            "id": "compressor-1-vfd", "name": "Compressor 1 variable-speed drive", "option": "B",
            "boundary": {"meters": [COMPRESSOR_1_METER]}, "baseline": baseline,
            "installation": {"start": day - timedelta(days=1), "end": day},
            "reporting": {"start": day + timedelta(days=1)}, "variables": variables, "confidence": 0.9,
            "static_factors": ["discharge pressure band 6.5–7.5 bar; drive setpoint 7.3 bar",
                               "compressor 2 unchanged (fixed speed, lag)"],
            "claimed": {"energy_per_year": 20000.0,
                        "source": "illustrative supplier's estimate for the demo plant"}}],
    })


def backfill_history(settings: Settings, config: dict, state_file: Path,
                     hours: float = 24.0, now: datetime | None = None) -> int:
    """On the first start, give the plant a past, queued in the gateway's own buffer (so it reaches
    the database through the one writer path), and the model state for the live simulator to
    continue from — its counters carry on without a jump. One simulated trajectory, compressor 1's
    retrofit in it, from BASELINE_DAYS before the retrofit day to ``now`` (default: the clock): the
    last ``hours`` one sample a minute, before that only the series the savings are measured on
    (``RETROFIT_SERIES``) every 15 minutes. Sub-meters (no role) get their counters only, which is
    what the structure sums: their power is live, and the live readings queue behind the backfill,
    so a third of the readings less is seconds sooner to first data."""
    from gateway.buffer import DiskBuffer
    from gateway.config import parse_config
    from lingtan.kernel.reading import Reading
    from simulators import history, statefile
    from simulators.site import RETROFIT_SERIES, SiteModel, local_day, local_midnight

    if state_file.exists():
        return 0
    cfg = parse_config(yaml.safe_dump(config), "demo gateway config")
    wanted = {(d.id, p.quantity) for d in cfg.devices for p in d.points if d.role is not None or p.counter}
    older_wanted = wanted & RETROFIT_SERIES
    end = (clock.now() if now is None else now).replace(microsecond=0)
    recent = end - timedelta(hours=hours)
    day = retrofit_day(settings, end)
    if (local_day(end) - day).days > MAX_RETROFIT_DAYS_AGO:
        raise DemoError(f"LINGTAN_SIM_RETROFIT_DATE {day} is more than {MAX_RETROFIT_DAYS_AGO} days before"
                        " today: the first start would simulate all the time since; choose a later day")
    start = min(local_midnight(day - timedelta(days=BASELINE_DAYS)), recent)
    model = SiteModel(settings.sim_seed, start, retrofit=local_midnight(day))
    buffer = DiskBuffer(cfg.buffer.path, cfg.buffer.max_bytes)
    batch: list[Reading] = []
    written = 0
    older = (row for row in history.sample(model, recent, OLDER_SAMPLE_S, max_step=OLDER_STEP_S,
                                                sub_meters=False)
             if row[0] < recent and (row[1], row[2]) in older_wanted)
    last_day = (row for row in history.sample(model, end, 60.0, max_step=BACKFILL_STEP_S)
                if (row[1], row[2]) in wanted)
    try:
        for t, device, quantity, value in itertools.chain(older, last_day):
            batch.append(Reading(t, device, quantity, value))
            if len(batch) >= 10_000:
                buffer.append(batch)
                written, batch = written + len(batch), []
        buffer.append(batch)
        written += len(batch)
    finally:
        buffer.close()
    statefile.save(model, state_file)
    return written


def _die_with_parent() -> None:
    # Children get SIGTERM if the demo itself is killed, so nothing is left behind.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen | None = None
    log_file: IO[bytes] | None = None


@dataclass
class Supervisor:
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], log_dir: Path) -> Child:
        child = Child(name, args, log_dir / f"{name}.log")
        child.log_file = child.log_path.open("ab")
        child.process = subprocess.Popen(
            [sys.executable, "-m", "lingtan.cli", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=child.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only the demo, which stops children in order
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.children.append(child)
        return child

    def dead(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def stop_all(self, timeout: float = 10.0) -> None:
        for child in reversed(self.children):
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            if child.log_file:
                child.log_file.close()


def wait_for(check: Callable[[], bool], timeout: float, what: str, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _stop.is_set():
            raise Interrupted
        dead = supervisor.dead()
        if dead is not None:
            raise DemoError(f"{dead.name} exited (code {dead.process.returncode if dead.process else '?'});"
                            f" see {dead.log_path}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise DemoError(f"{what} did not come up within {timeout:.0f} s")


def port_answers(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def has_readings(database_url: str) -> bool:
    with psycopg.connect(libpq_url(database_url), connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT meter_id) FROM readings WHERE time > now() - interval '1 minute'"
        ).fetchone()
    return bool(row and row[0] >= 2)


def history_ready(database_url: str, backfilled: int) -> bool:
    """The backfill is stored and its rollups refreshed (older marks cleared), so the first
    page load shows the whole day and the retrofit's weeks are there in days."""
    with psycopg.connect(libpq_url(database_url), connect_timeout=3) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
        stale = conn.execute(
            "SELECT count(*) FROM rollup_dirty WHERE bucket < now() - interval '2 minutes'"
        ).fetchone()
    return bool(stored and stale and stored[0] >= backfilled and stale[0] == 0)


def run_demo(settings: Settings) -> int:
    from lingtan.kernel import logs

    # The terminal shows progress lines; warnings of the demo process itself go below them.
    logs.configure("WARNING", "text")
    stop = _stop
    stop.clear()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    data_dir = settings.data_dir
    demo_dir, log_dir = data_dir / "demo", data_dir / "logs"
    pg: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    supervisor: Supervisor | None = None
    say("Lingtan demo: simulated plant → gateway → PostgreSQL → API → dashboard")
    try:
        check_ports(settings)
        demo_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        config = gateway_config(settings, demo_dir)
        state_file = demo_dir / "sim-state.json"
        # A first start's history needs nothing from the database or the broker: it is computed
        # while they start, and waited for where it used to be computed.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-history")
        past: Future[int] | None = None
        past_label = ""
        if not state_file.exists():
            now = clock.now()
            day = retrofit_day(settings, now)
            past_label = ("first start: simulating the plant's last 24 hours, and compressor 1 and"
                          f" production since {day - timedelta(days=BASELINE_DAYS)}"
                          f" (variable speed from {day})")
            past = pool.submit(backfill_history, settings, config, state_file, now=now)

        if settings.database_url:
            server_url = settings.database_url
            say("  database: LINGTAN_DATABASE_URL")
            database_url = server_url
        else:
            pg = EmbeddedPostgres(data_dir / "postgres")
            server_url = str(step(f"starting embedded PostgreSQL (data in {data_dir / 'postgres'})",
                                  pg.start))
            database_url = ensure_database(server_url)
        step("applying database migrations", lambda: upgrade(database_url))
        ensure_demo_site(database_url)
        if DEMO_SITE_FILE.exists():
            from lingtan.core.site_model import apply_site_file

            step(f"applying the demo site's energy model ({DEMO_SITE_FILE.name})",
                 lambda: apply_site_file(database_url, DEMO_SITE_FILE))
        api_key = ensure_demo_key(database_url)
        demo_user = ensure_demo_user(database_url)

        if settings.mqtt_url:
            mqtt_url, protocol = settings.mqtt_url, settings.mqtt_protocol
            say(f"  MQTT broker: {mqtt_url}")
        else:
            broker = EmbeddedBroker("127.0.0.1", settings.embedded_mqtt_port)
            step(f"starting embedded MQTT broker on 127.0.0.1:{settings.embedded_mqtt_port}",
                 broker.start)
            mqtt_url, protocol = f"mqtt://127.0.0.1:{settings.embedded_mqtt_port}", "3.1.1"

        config_path = demo_dir / "gateway.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        backfilled = 0
        if past is not None:
            backfilled = int(step(past_label, past.result))
            say(f"    {backfilled:,} readings queued for the database")
            if DEMO_SITE_FILE.exists():  # compressor 1 and the line are the site file's meters
                step(f"recording the compressor 1 retrofit project (baseline to {day - timedelta(days=2)},"
                     f" reporting from {day + timedelta(days=1)})",
                     lambda: record_savings(database_url, demo_savings(day)))
        pool.shutdown()  # its thread ends before the children are forked

        env = dict(os.environ)
        env.update({
            "LINGTAN_DATABASE_URL": database_url,
            "LINGTAN_MQTT_URL": mqtt_url,
            "LINGTAN_MQTT_PROTOCOL": protocol,
            "LINGTAN_DATA_DIR": str(data_dir),
        })
        supervisor = Supervisor(env)
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        dash_url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/"

        supervisor.spawn("simulators", ["simulate", "--state", str(state_file)], log_dir)
        step("starting simulated meters (Modbus TCP + MQTT)", lambda: wait_for(
            lambda: port_in_use(settings.sim_host, settings.sim_modbus_port) is not False,
            30, "simulators", supervisor))
        supervisor.spawn("gateway", ["gateway", "run", "--config", str(config_path)], log_dir)
        supervisor.spawn("api", ["api"], log_dir)
        supervisor.spawn("dashboard", ["dashboard"], log_dir)
        step("starting API", lambda: wait_for(lambda: http_ok(f"{api_url}/api/v1/health"), 60,
                                                 "API", supervisor))
        step("starting dashboard", lambda: wait_for(lambda: http_ok(dash_url), 60, "dashboard",
                                                       supervisor))
        step("waiting for the first meter readings", lambda: wait_for(
            lambda: has_readings(database_url), 60, "meter readings", supervisor))
        if backfilled:
            step("storing the history and its rollups", lambda: wait_for(
                lambda: history_ready(database_url, backfilled), 120, "the history", supervisor))

        say("")
        # The embedded database is reachable only through the URL the demo made up.
        env_prefix = "" if settings.database_url else f"LINGTAN_DATABASE_URL='{database_url}' "
        say(f"  Dashboard  {dash_url}")
        if demo_user:
            say(f"  Sign in    user {demo_user[0]}, password {demo_user[1]} (engineer, shown once)")
        elif demo_user_exists(database_url):
            say(f"  Sign in    user {DEMO_USER}; its password was shown on the first start, set a new one"
                f" with: {env_prefix}lingtan users password {DEMO_USER}")
        else:
            say(f"  Sign in    with a dashboard user ({env_prefix}lingtan users list) or an API key")
        say(f"  API        {api_url}/api/v1  (OpenAPI: {api_url}/docs)")
        if api_key:
            say(f"  API key (admin, shown once): {api_key}")
        else:
            say("  API key    the demo's admin key was shown on its first start; make another with:"
                f" {env_prefix}lingtan keys create --role viewer")
        say(f"  Gateway    http://127.0.0.1:{settings.gateway_metrics_port}/metrics"
            f"  (lingtan gateway status --config {config_path})")
        say(f"  Logs       {log_dir}")
        say("Press Ctrl-C to stop.")
        while not stop.wait(1.0):
            dead = supervisor.dead()
            if dead is not None:
                raise DemoError(f"{dead.name} stopped unexpectedly; see {dead.log_path}")
        say("\nstopping …", end=" ")
        return 0
    except Interrupted:
        say("\ninterrupted while starting; stopping …", end=" ")
        return 0
    except DemoError as exc:
        say(f"\nerror: {exc}")
        return 1
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        if stop.is_set():
            say("done")
