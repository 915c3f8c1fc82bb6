"""The deployment files (Dockerfile, docker-compose.yml, deploy/) agree with the code.

Docker is not needed: the files are parsed and checked against `lingtan.kernel.settings.Settings`,
the `lingtan` CLI and each other.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import typer
import yaml

import lingtan.cli
from lingtan.kernel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
README = ROOT / "README.md"

APP_SERVICES = {"migrate", "simulators", "gateway", "ingest", "api", "dashboard"}
INFRA_SERVICES = {"timescaledb", "mosquitto"}
DB_SERVICES = {"migrate", "gateway", "ingest", "api", "dashboard"}
MQTT_SERVICES = {"simulators", "gateway", "ingest"}
# Subcommands the compose file may name before they exist in lingtan/cli/__init__.py.
# Remove an entry once the command lands; then it is checked like every other one.
PENDING_COMMANDS = frozenset({"ingest"})

_INTERP = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?-)(?P<default>[^}]*)\}")


# --- helpers ------------------------------------------------------------------------------


def _load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def interpolate(value: str) -> str:
    """Resolve compose `${NAME:-default}` / `${NAME-default}` with their defaults.

    The test must not depend on the caller's environment, so only defaults are used; any
    other `$` form would be ambiguous and fails the test.
    """
    out = _INTERP.sub(lambda m: m.group("default"), value)
    leftover = out.replace("$$", "")
    assert "$" not in leftover, f"unresolvable compose interpolation in {value!r}"
    return out.replace("$$", "$")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose allows a mapping or a list of K=V)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        env = {k: (v[0] if v else "") for k, *v in pairs}
    return {str(k): interpolate(str(v)) for k, v in env.items() if v is not None}


def command_tokens(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    assert cmd, "app service without a command"
    return shlex.split(cmd) if isinstance(cmd, str) else [str(t) for t in cmd]


def setting_default(field: str) -> Any:
    return Settings.model_fields[field].default


def effective(service: dict[str, Any], field: str) -> str:
    """The value the service's Settings would see for `field` (compose env or the default)."""
    return env_of(service).get(f"LINGTAN_{field.upper()}", str(setting_default(field)))


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path → host path (relative to the compose file) for bind mounts."""
    out: dict[str, str] = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            if vol.get("type") == "bind":
                out[vol["target"]] = vol["source"]
            continue
        source, target, *_ = vol.split(":")
        if source.startswith((".", "/")):
            out[target] = source
    return out


def volume_targets(service: dict[str, Any]) -> list[str]:
    targets = []
    for vol in service.get("volumes") or []:
        targets.append(vol["target"] if isinstance(vol, dict) else vol.split(":")[1])
    return targets


def container_ports(service: dict[str, Any]) -> dict[int, int]:
    """container port → published host port."""
    out: dict[int, int] = {}
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out[int(port["target"])] = int(port.get("published", port["target"]))
            continue
        parts = str(port).split("/")[0].split(":")
        assert len(parts) >= 2, f"port {port!r} is not published to a fixed host port"
        out[int(parts[-1])] = int(parts[-2])
    return out


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def mosquitto_listener_ports() -> set[int]:
    ports = set()
    for raw in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].split()
        if len(line) >= 2 and line[0] in ("listener", "port"):
            ports.add(int(line[1]))
    return ports


def walk_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*walk_strings(k), *walk_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in walk_strings(item)]
    return [node] if isinstance(node, str) else []


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


# --- the compose file ---------------------------------------------------------------------


def test_compose_has_exactly_the_expected_services(services):
    assert set(services) == APP_SERVICES | INFRA_SERVICES


def test_images_are_pinned_or_the_project_image(services):
    built = {name for name, svc in services.items() if "build" in svc}
    assert built == APP_SERVICES, "exactly the app services run the project image"
    project_images = {services[name].get("image") for name in built}
    assert len(project_images) == 1, f"app services use different images: {project_images}"
    (project_image,) = project_images
    assert project_image and project_image.split(":")[0] == "lingtan"
    for name in built:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / context).resolve() == ROOT, f"{name}: build context is not the repo"
        assert (ROOT / context / dockerfile).is_file(), f"{name}: {dockerfile} missing"

    for name in set(services) - built:
        image = services[name].get("image", "")
        repo, _, tag = image.partition(":")
        pinned = "@sha256:" in image or (tag and tag != "latest" and re.search(r"\d", tag))
        assert repo and pinned, f"{name}: image {image!r} is not pinned to a version"


def test_every_lingtan_variable_is_a_settings_field(compose, services):
    fields = set(Settings.model_fields)
    mentioned = {m for s in walk_strings(compose) for m in re.findall(r"LINGTAN_[A-Z0-9_]+", s)}
    assert mentioned, "compose file sets no LINGTAN_* variables at all"
    unknown = {name for name in mentioned if name.removeprefix("LINGTAN_").lower() not in fields}
    assert not unknown, f"not fields of lingtan.kernel.settings.Settings: {sorted(unknown)}"

    for name, svc in services.items():
        env = {k: v for k, v in env_of(svc).items() if k.startswith("LINGTAN_")}
        if name in APP_SERVICES:
            assert env, f"{name}: no LINGTAN_* settings"
        # The values must be valid too (ports in range, log_format pattern, …).
        Settings(**{k.removeprefix("LINGTAN_").lower(): v for k, v in env.items()})


def test_infrastructure_services_get_no_lingtan_settings(services):
    for name in INFRA_SERVICES:
        assert not [k for k in env_of(services[name]) if k.startswith("LINGTAN_")], name


def test_database_services_point_at_timescaledb(services):
    db = services["timescaledb"]
    db_env = env_of(db)
    user = db_env.get("POSTGRES_USER", "postgres")
    password = db_env["POSTGRES_PASSWORD"]
    dbname = db_env.get("POSTGRES_DB", user)

    for name in DB_SERVICES:
        url = env_of(services[name]).get("LINGTAN_DATABASE_URL")
        assert url, f"{name} needs the database but has no LINGTAN_DATABASE_URL"
        parts = urlsplit(url)
        assert parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"), url
        assert parts.hostname == "timescaledb", f"{name}: {url} is not the timescaledb service"
        assert (parts.port or 5432) == 5432
        assert unquote(parts.username or "") == user, f"{name}: user differs from POSTGRES_USER"
        assert unquote(parts.password or "") == password, f"{name}: password differs"
        assert parts.path.lstrip("/") == dbname, f"{name}: database differs from POSTGRES_DB"

    for name in APP_SERVICES - DB_SERVICES:
        assert "LINGTAN_DATABASE_URL" not in env_of(services[name]), f"{name} needs no database"


def test_timescaledb_is_healthchecked_and_preloads_the_extension(services):
    db = services["timescaledb"]
    assert db["image"].startswith("timescale/timescaledb:")
    cmd = db.get("command") or []
    cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
    preload = [t for t in cmd if t.startswith("shared_preload_libraries=")]
    assert preload and "timescaledb" in preload[-1].split("=", 1)[1].split(",")
    test = db["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    assert any(t.startswith("/var/lib/postgresql/data") for t in volume_targets(db))


def test_startup_order(services):
    assert depends_on(services["migrate"]).get("timescaledb") == "service_healthy"
    for name in DB_SERVICES - {"migrate"}:
        assert depends_on(services[name]).get("migrate") == "service_completed_successfully", name
    for name in MQTT_SERVICES:
        assert "mosquitto" in depends_on(services[name]), name
    assert services["migrate"].get("restart") in (None, "no"), "migrate is a one-shot job"


def test_mqtt_services_point_at_mosquitto_listener(services):
    listeners = mosquitto_listener_ports()
    assert listeners, "mosquitto.conf opens no listener"
    mounts = bind_mounts(services["mosquitto"])
    source = mounts.get("/mosquitto/config/mosquitto.conf")
    assert source and (ROOT / source).resolve() == MOSQUITTO_CONF

    for name in MQTT_SERVICES:
        url = env_of(services[name]).get("LINGTAN_MQTT_URL")
        assert url, f"{name} needs MQTT but has no LINGTAN_MQTT_URL"
        parts = urlsplit(url)
        assert parts.scheme == "mqtt", url
        assert parts.hostname == "mosquitto", f"{name}: {url} is not the mosquitto service"
        assert (parts.port or 1883) in listeners, f"{name}: port not in listeners {listeners}"


@pytest.mark.parametrize("service, field", [("api", "api"), ("dashboard", "dashboard")])
def test_published_ports_match_settings(services, service, field):
    svc = services[service]
    port = int(effective(svc, f"{field}_port"))
    assert port in container_ports(svc), f"{service} listens on {port}, not published"
    # Inside a container the default 127.0.0.1 would make the published port unreachable.
    assert effective(svc, f"{field}_host") == "0.0.0.0"


def test_gateway_config_is_mounted_and_matches_the_stack(services):
    gateway = services["gateway"]
    tokens = command_tokens(gateway)
    assert "--config" in tokens
    config_path = tokens[tokens.index("--config") + 1]
    source = bind_mounts(gateway).get(config_path)
    assert source, f"{config_path} is not bind-mounted into the gateway"
    host_file = (ROOT / source).resolve()
    assert host_file.is_file() and host_file.is_relative_to(ROOT)

    config = yaml.safe_load(host_file.read_text(encoding="utf-8"))
    # The durable buffer must survive container restarts: it lives on a volume.
    buffer = Path(config["buffer"]["path"])
    assert any(buffer.is_relative_to(t) for t in volume_targets(gateway)), buffer

    sinks = {s["type"] for s in config["sinks"]}
    if "postgres" in sinks:
        assert "gateway" in DB_SERVICES

    sim = services["simulators"]
    assert effective(sim, "sim_host") == "0.0.0.0"
    sim_port = int(effective(sim, "sim_modbus_port"))
    modbus = [d for d in config["devices"] if d["protocol"].startswith("modbus")]
    assert modbus, "demo config reads no Modbus meters"
    for dev in modbus:
        assert dev["host"] in services, f"{dev['id']}: host {dev['host']} is no compose service"
        if dev["host"] == "simulators":
            assert dev.get("port", 502) == sim_port, dev["id"]
    if any(d["protocol"] == "mqtt" for d in config["devices"]):
        assert "gateway" in MQTT_SERVICES


def test_gateway_config_loads():
    config_mod = pytest.importorskip("gateway.config")
    config_mod.load_config(ROOT / "deploy" / "gateway.yaml")


def _is_group(cmd: Any) -> bool:
    # Typer vendors its own click, so duck-type instead of isinstance(click.Group).
    return isinstance(getattr(cmd, "commands", None), dict)


def _resolve(group: Any, tokens: list[str]) -> tuple[Any, list[str]]:
    cmd = group
    rest = list(tokens)
    while _is_group(cmd):
        assert rest, f"{tokens}: stops at a command group"
        name = rest.pop(0)
        sub = cmd.commands.get(name)
        assert sub is not None, f"{tokens}: {name!r} is not a subcommand"
        cmd = sub
    return cmd, rest


def test_commands_are_real_lingtan_subcommands(services):
    cli = typer.main.get_command(lingtan.cli.app)
    assert _is_group(cli)
    missing = set()
    for name in APP_SERVICES:
        tokens = command_tokens(services[name])
        # ENTRYPOINT is already `lingtan`; repeating it would run `lingtan lingtan …`.
        assert tokens[0] != "lingtan", f"{name}: command must not repeat the entrypoint"
        if tokens[0] not in cli.commands:
            missing.add(tokens[0])
            continue
        cmd, args = _resolve(cli, tokens)
        options = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for arg in args:
            if arg.startswith("-"):
                assert arg.split("=", 1)[0] in options, f"{name}: unknown option {arg}"
    assert missing <= PENDING_COMMANDS, f"compose names missing commands: {sorted(missing)}"


# --- the other files ----------------------------------------------------------------------


def test_mosquitto_conf_is_sane():
    lines = [raw.split("#", 1)[0].split() for raw in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines()]
    directives = {line[0]: line[1:] for line in lines if line}
    assert 1883 in mosquitto_listener_ports()
    assert directives.get("persistence") == ["true"]
    assert "persistence_location" in directives
    # Anonymous access is a demo choice and must come with the production recipe.
    text = MOSQUITTO_CONF.read_text(encoding="utf-8")
    if directives.get("allow_anonymous") == ["true"]:
        assert re.search(r"^#\s*password_file\s", text, re.M)
        assert re.search(r"^#\s*listener\s+8883", text, re.M)


def _mosquitto_directives() -> dict[str, list[str]]:
    lines = [raw.split("#", 1)[0].split() for raw in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines()]
    return {line[0]: line[1:] for line in lines if line}


_PERIOD_S = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}


def test_mosquitto_conf_keeps_what_gateways_send():
    """The broker settings a gateway needs (see the comments in mosquitto.conf and the README)."""
    directives = _mosquitto_directives()
    # a queue that rides out an outage of an ingest worker or a gateway: far above the 1000 default
    queued = int(directives["max_queued_messages"][0])
    assert queued >= 100_000, "max_queued_messages must hold an outage's messages"
    assert int(directives["max_inflight_messages"][0]) >= 20  # no fewer in flight than the default
    assert directives.get("persistence") == ["true"]
    # sessions of MQTT 3.1.1 clients outlive what MQTT 5 clients ask for themselves
    from lingtan.kernel.mqtt import SESSION_EXPIRY_S

    (expiry,) = directives["persistent_client_expiration"]
    assert int(expiry[:-1]) * _PERIOD_S[expiry[-1]] >= SESSION_EXPIRY_S
    # the gateway reads the dropped-message counter from $SYS: it must not be switched off
    assert int(directives.get("sys_interval", ["10"])[0]) > 0
    for name in ("max_queued_messages", "max_inflight_messages", "persistent_client_expiration"):
        assert name in README.read_text(encoding="utf-8"), f"the README does not explain {name}"


@pytest.mark.skipif(not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists(),
                    reason="needs the mosquitto binary")
def test_mosquitto_accepts_the_conf_and_publishes_the_dropped_counter(tmp_path: Path):
    """The shipped file, on a free port and a private data folder, starts the Mosquitto we test
    against (a misspelt option stops it) and publishes the $SYS topics the gateway reads."""
    import socket
    import subprocess
    import time

    import paho.mqtt.client as mqtt

    from tests.conftest import free_port

    port = free_port()
    text = MOSQUITTO_CONF.read_text(encoding="utf-8")
    text = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    text = re.sub(r"^persistence_location .*$", f"persistence_location {tmp_path}/", text, flags=re.M)
    text = re.sub(r"^log_dest .*$", f"log_dest file {tmp_path}/mosquitto.log", text, flags=re.M)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text + "user root\n")  # as root it would switch to a user who cannot write tmp_path
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = tmp_path / "mosquitto.log"
                    pytest.fail(f"mosquitto did not start: {proc.stderr.read() if proc.stderr else ''}"
                                f"{log.read_text() if log.exists() else ''}")
                time.sleep(0.05)
        seen: dict[str, str] = {}
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.on_message = lambda c, u, msg: seen.setdefault(msg.topic, msg.payload.decode())
        client.connect("127.0.0.1", port)
        client.subscribe([("$SYS/broker/uptime", 0), ("$SYS/broker/version", 0),
                          ("$SYS/broker/publish/messages/dropped", 0)])
        client.loop_start()
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        client.disconnect()
        client.loop_stop()
        assert seen.get("$SYS/broker/version", "").startswith("mosquitto version 2."), seen
        assert seen.get("$SYS/broker/uptime", "").endswith(" seconds"), seen
        assert seen.get("$SYS/broker/publish/messages/dropped") == "0", seen  # published at start
    finally:
        proc.terminate()
        proc.wait(10)


def test_dockerfile_installs_project_with_lingtan_entrypoint():
    instructions = dockerfile_instructions()
    stages = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    assert stages, "no FROM"
    args = {
        k: v
        for word, rest in instructions[: stages[0]]
        if word == "ARG" and "=" in rest
        for k, v in [rest.split("=", 1)]
    }

    def base(rest: str) -> str:
        ref = rest.split()[0]
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), ref)

    for i in stages:
        assert base(instructions[i][1]).startswith("python:3.11-slim"), instructions[i]

    copied = " ".join(rest for word, rest in instructions if word == "COPY")
    assert "pyproject.toml" in copied
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert re.search(rf"(^|\s){re.escape(pattern.rstrip('*'))}\b", copied), pattern

    installs = [rest for word, rest in instructions if word == "RUN" and "pip install" in rest]
    assert any(re.search(r"pip install(\s+-\S+)*\s+(\.|/src)(\s|$|\[)", r) for r in installs), (
        "the project itself is not pip-installed"
    )

    final = instructions[stages[-1] :]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "final stage runs as root"
    entrypoints = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["lingtan"]
    assert pyproject["project"]["scripts"]["lingtan"] == "lingtan.cli:app"
