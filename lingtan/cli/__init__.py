"""The `lingtan` command: one entry point for every component."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from lingtan.kernel import clock, logs
from lingtan.kernel.settings import get_settings

T = TypeVar("T")
app = typer.Typer(help="Lingtan: energy metering gateway and carbon dashboard.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
gateway_app = typer.Typer(help="Field gateway: collect meter readings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
site_app = typer.Typer(help="Site energy model: import and show site files.", no_args_is_help=True)
app.add_typer(site_app, name="site")
app.add_typer(gateway_app, name="gateway")
probe_app = typer.Typer(help="Commissioning: one look at a device.", no_args_is_help=True)
app.add_typer(probe_app, name="probe")
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
users_app = typer.Typer(help="Dashboard users: create, list, disable, set a password.", no_args_is_help=True)
app.add_typer(users_app, name="users")
alerts_app = typer.Typer(help="Alert rules: list them, test one now.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
periods_app = typer.Typer(help="Closed periods: close a month or year so its reports keep their figures; "
                               "list a site's periods; reopen one.", no_args_is_help=True)
app.add_typer(periods_app, name="periods")
programme_app = typer.Typer(help="Zero-carbon programme: targets, the net balance, the annual report.",
                            no_args_is_help=True)
app.add_typer(programme_app, name="programme")


@app.callback()
def _process_clock() -> None:
    """Every command's "now": the system clock, or LINGTAN_CLOCK_START's."""
    start = get_settings().clock_start
    if start is not None:
        clock.set_clock(clock.starting_at(start))


def _setup_logging() -> None:
    s = get_settings()
    logs.configure(s.log_level, s.log_format)


def _database_url() -> str:
    url = get_settings().database_url
    if not url:
        typer.echo("LINGTAN_DATABASE_URL is not set (e.g. postgresql://user@host:5432/lingtan)", err=True)
        raise typer.Exit(2)
    return url


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations."""
    from lingtan.kernel.migrate import upgrade

    _setup_logging()
    upgrade(_database_url())
    typer.echo("database schema is up to date")


@gateway_app.command("run")
def gateway_run(
    config: Annotated[Path, typer.Option("--config", "-c", help="gateway YAML file")],
) -> None:
    """Run the gateway until interrupted."""
    from gateway.config import ConfigError, load_config
    from gateway.runtime import run_gateway

    _setup_logging()
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    run_gateway(cfg, get_settings())


@gateway_app.command("check")
def gateway_check(
    config: Annotated[Path, typer.Option("--config", "-c", help="gateway YAML file")],
) -> None:
    """Validate a gateway config and print the resolved read plan."""
    from gateway.config import ConfigError, load_config
    from gateway.plan import describe_plan

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(describe_plan(cfg))


@gateway_app.command("status")
def gateway_status(
    config: Annotated[Path, typer.Option("--config", "-c", help="gateway YAML file")],
    from_db: Annotated[bool, typer.Option("--from-db", help="read the last heartbeat instead")] = False,
) -> None:
    """Per-device health of the running gateway (its /metrics), or its last heartbeat."""
    from gateway.config import ConfigError, load_config
    from gateway.metrics import NotAnswering, status_text

    try:
        cfg = load_config(config)
        typer.echo(status_text(cfg.gateway.id, cfg.health.listen, _database_url() if from_db else None))
    except (ConfigError, NotAnswering) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1 if isinstance(exc, NotAnswering) else 2) from None


@site_app.command("import")
def site_import(file: Annotated[Path, typer.Argument(metavar="FILE", help="site YAML file")]) -> None:
    """Apply a site file (site, energy parameters, meter roles, green power, factor overrides,
    activity data)."""
    from lingtan.core.site_file import SiteFileError
    from lingtan.core.site_model import apply_site_file

    try:
        result = apply_site_file(_database_url(), file)
    except SiteFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(result.summary())


@site_app.command("show")
def site_show(site_id: Annotated[str, typer.Argument(metavar="SITE_ID")]) -> None:
    """Print a site's energy model as a site file, ready to edit and import again."""
    from lingtan.core.queries import NotFound
    from lingtan.core.site_file import dump_site_file
    from lingtan.core.site_model import export_site_file
    from lingtan.kernel.db import get_engine

    try:
        with get_engine(_database_url()).connect() as conn:
            typer.echo(dump_site_file(export_site_file(conn, site_id)), nl=False)
    except NotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@app.command("simulate")
def simulate(
    site: Annotated[Path | None, typer.Option(help="site file (default: the built-in demo-plant)")] = None,
    speed: Annotated[float | None, typer.Option(help="simulated seconds per wall-clock second")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (same seed, same plant)")] = None,
    state: Annotated[Path | None, typer.Option(help="file to resume from and save state to")] = None,
) -> None:
    """Run the simulated demo plant: Modbus TCP meters and MQTT telemetry."""
    from simulators.runner import run_simulators
    from simulators.site import local_midnight

    _setup_logging()
    s = get_settings()
    run_simulators(
        site_file=site,
        host=s.sim_host,
        modbus_port=s.sim_modbus_port,
        mqtt_url=s.mqtt_url,
        mqtt_protocol=s.mqtt_protocol,
        seed=s.sim_seed if seed is None else seed,
        speed=s.sim_speed if speed is None else speed,
        state_file=state,
        retrofit=None if s.sim_retrofit_date is None else local_midnight(s.sim_retrofit_date),
    )


@app.command("api")
def api() -> None:
    """Serve the HTTP API."""
    import uvicorn

    _setup_logging()
    s = get_settings()
    _database_url()
    uvicorn.run("api.app:create_app", factory=True, host=s.api_host, port=s.api_port,
                log_config=None)


@app.command("dashboard")
def dashboard() -> None:
    """Serve the live dashboard."""
    import uvicorn

    _setup_logging()
    s = get_settings()
    _database_url()
    uvicorn.run("dashboard.app:create_asgi_app", factory=True, host=s.dashboard_host,
                port=s.dashboard_port, log_config=None)


@app.command("demo")
def demo() -> None:
    """Run the whole system on this machine: database, broker, simulators, gateway, API, dashboard."""
    from lingtan.cli.demo import run_demo

    raise typer.Exit(run_demo(get_settings()))



@app.command("ingest")
def ingest(
    client_id: Annotated[str | None, typer.Option(
        "--id", help="MQTT client id (default: hostname-pid)")] = None,
    dead_letters: Annotated[Path | None, typer.Option(
        help="where unreadable uplink payloads are kept (default: <data dir>/ingest-dead-letters.db)"
    )] = None,
) -> None:
    """Central worker: MQTT uplink (shared subscription) → database, acknowledged to each gateway
    once committed."""
    import signal
    import threading

    from gateway.ingest import default_client_id, run_ingest

    _setup_logging()
    s = get_settings()
    database_url = _database_url()
    if not s.mqtt_url:
        typer.echo("LINGTAN_MQTT_URL is not set (e.g. mqtt://central:1883)", err=True)
        raise typer.Exit(2)
    worker_id = client_id or default_client_id()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        run_ingest(s.mqtt_url, s.mqtt_protocol, database_url, worker_id,
                   dead_letters or s.data_dir / "ingest-dead-letters.db", stopping)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command("rollups")
def rollups(
    every: Annotated[float | None, typer.Option(
        min=0.1, help="seconds between catch-ups (default: LINGTAN_ROLLUPS_EVERY_SECONDS, 2)")] = None,
) -> None:
    """Central worker: keep the rollups current (refresh the buckets new readings marked) until
    Ctrl-C or SIGTERM. Every `lingtan api` and `lingtan ingest` process does this too; run it
    where neither runs, or with LINGTAN_ROLLUPS_REFRESHER=false for the API."""
    import signal
    import threading

    from lingtan.core.rollup_worker import RollupWorker

    _setup_logging()
    s = get_settings()
    database_url = _database_url()
    seconds = every if every is not None else s.rollups_every_seconds
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    worker = RollupWorker(database_url, every=seconds)
    try:
        waiting = worker.refresher.pending()
    except Exception as exc:  # psycopg.Error: the database is not there yet; the worker retries
        typer.echo(f"database not reachable yet ({exc}); retrying every {seconds:g} s", err=True)
        waiting = None
    marks = "" if waiting is None else f" ({waiting:,} marked now)"
    typer.echo(f"refreshing marked rollup buckets{marks} every {seconds:g} s; Ctrl-C or SIGTERM stops")
    worker.start()
    stopping.wait()
    typer.echo("stopping: the refresh in progress finishes, marks not reached stay for the next run")
    worker.stop()
    typer.echo(f"stopped after refreshing {worker.refreshed:,} bucket(s)")


@probe_app.command("modbus")
def probe_modbus(
    target: Annotated[str | None, typer.Argument(
        metavar="HOST[:PORT]", help="TCP device or gateway (omit with --serial)")] = None,
    unit: Annotated[int, typer.Option(min=0, max=255, help="unit (slave) id")] = 1,
    address: Annotated[str, typer.Option(help="first register, 0-based: 52 or 0x34")] = "0",
    count: Annotated[int | None, typer.Option(help="registers to read (default: the datatype's)")] = None,
    table: Annotated[str, typer.Option(help="holding | input | coil | discrete")] = "holding",
    datatype: Annotated[str, typer.Option(help="uint16 int16 uint32 int32 float32 … string")] = "uint16",
    word_order: Annotated[str, typer.Option(help="big | little")] = "big",
    byte_order: Annotated[str, typer.Option(help="big | little")] = "big",
    rtu_over_tcp: Annotated[bool, typer.Option(help="RTU frames over TCP (serial device server)")] = False,
    serial: Annotated[str | None, typer.Option(help="serial port for Modbus RTU, e.g. /dev/ttyUSB0")] = None,
    baudrate: Annotated[int, typer.Option(help="serial speed")] = 9600,
    parity: Annotated[str, typer.Option(help="N | E | O")] = "N",
    stopbits: Annotated[int, typer.Option(help="1 | 2")] = 1,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the reply")] = 3.0,
) -> None:
    """One Modbus read, printed raw and decoded in every word/byte order."""
    from gateway.probe import ProbeError, ProbeRequest, default_count, parse_address, parse_host, probe
    from gateway.transports import BusKey

    try:
        if serial:
            key = BusKey("modbus-rtu", serial, 0, baudrate, parity.upper(), stopbits)
        elif target:
            host, port = parse_host(target)
            key = BusKey("modbus-rtu-over-tcp" if rtu_over_tcp else "modbus-tcp", host, port)
        else:
            raise ProbeError("give HOST[:PORT] or --serial PORT")
        if word_order not in ("big", "little") or byte_order not in ("big", "little"):
            raise ProbeError("--word-order and --byte-order take big or little")
        req = ProbeRequest(unit, parse_address(address), count or default_count(datatype, table),
                           table, datatype, word_order, byte_order, timeout)
        typer.echo(probe(key, req))
    except ProbeError as exc:
        typer.echo(f"probe failed: {exc}", err=True)
        raise typer.Exit(1) from None


@probe_app.command("mqtt")
def probe_mqtt(
    topic: Annotated[str, typer.Option(help="topic filter, wildcards allowed")],
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="gateway YAML: also show what its mappings make of each message")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="stop after N messages")] = None,
    seconds: Annotated[float | None, typer.Option(min=0, help="stop after S seconds")] = None,
) -> None:
    """Show messages on a topic and what the device mapping makes of them."""
    from gateway.collectors.mqtt import probe
    from gateway.config import ConfigError, Device, load_config

    s = get_settings()
    if not s.mqtt_url:
        typer.echo("LINGTAN_MQTT_URL is not set (e.g. mqtt://broker:1883)", err=True)
        raise typer.Exit(2)
    devices: list[Device] = []
    if config is not None:
        try:
            devices = [d for d in load_config(config).devices if d.protocol == "mqtt"]
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    seen = probe(s.mqtt_url, s.mqtt_protocol, topic, devices, typer.echo, count=count, seconds=seconds)
    typer.echo(f"{seen} message(s)")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer | engineer | admin")],
    name: Annotated[str, typer.Option(help="what the key is for")] = "",
) -> None:
    """Make an API key and print it; it cannot be shown again."""
    from lingtan.core.keys import RANK, create_key
    from lingtan.kernel.db import get_engine

    if role not in RANK:
        typer.echo(f"--role takes {' | '.join(RANK)}", err=True)
        raise typer.Exit(2)
    with get_engine(_database_url()).begin() as conn:
        key, plain = create_key(conn, role, name)
    typer.echo(plain)
    typer.echo(f"key {key.id} ({role}) created; it will not be shown again, store it now", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """Every API key, without its secret."""
    from lingtan.core.keys import list_keys
    from lingtan.kernel.db import get_engine

    with get_engine(_database_url()).connect() as conn:
        keys, _ = list_keys(conn)
    typer.echo(f"{'id':>5}  {'prefix':8}  {'role':8}  {'created':16}  {'revoked':16}  name")
    for k in keys:
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-"
        created = f"{k.created_at:%Y-%m-%d %H:%M}"
        typer.echo(f"{k.id:>5}  {k.prefix:8}  {k.role:8}  {created:16}  {revoked:16}  {k.name}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1,
                                          help="the key's id (lingtan keys list)")],
) -> None:
    """Revoke an API key at once."""
    from lingtan.core.keys import revoke_key
    from lingtan.kernel.db import get_engine

    with get_engine(_database_url()).begin() as conn:
        info = revoke_key(conn, key_id)
    if info is None:
        typer.echo(f"no API key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"key {info.id} ({info.role}, {info.name or 'unnamed'}) revoked")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        import sys

        text = sys.stdin.read()
        # The newline that echo or a here-string adds is not part of the password; anything
        # else, leading or trailing spaces included, is.
        return text.removesuffix("\n").removesuffix("\r")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="sign-in name (stored lower-case)")],
    role: Annotated[str, typer.Option(help="viewer | engineer | admin")],
    language: Annotated[str | None, typer.Option(
        help="zh | en for the dashboard; unset: the browser's language")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from stdin instead of asking twice")] = False,
) -> None:
    """Make a dashboard user; the password is asked for twice (hidden) or read from stdin."""
    from lingtan.core import users
    from lingtan.kernel.db import get_engine

    try:
        # Everything that can be wrong without the password is checked before asking for it.
        username = users.normalize_username(name)
        users.check_role(role)
        users.check_language(language)
        url = _database_url()
        password = _read_password(password_stdin)
        with get_engine(url).begin() as conn:
            info = users.create_user(conn, username, password, role, language)
    except users.UserError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"user {info.username} ({info.role}) created")


@users_app.command("list")
def users_list() -> None:
    """Every dashboard user, disabled ones included; never a password."""
    from lingtan.core.users import list_users
    from lingtan.kernel.db import get_engine

    with get_engine(_database_url()).connect() as conn:
        found = list_users(conn)

    def when(t: object) -> str:
        return f"{t:%Y-%m-%d %H:%M}" if t else "-"

    typer.echo(f"{'id':>5}  {'user':24}  {'role':8}  {'lang':4}  {'created':16}  {'last sign-in':16}"
               "  disabled")
    for u in found:
        typer.echo(f"{u.id:>5}  {u.username:24}  {u.role:8}  {u.language or '-':4}  {when(u.created_at):16}"
                   f"  {when(u.last_sign_in_at):16}  {when(u.disabled_at)}")


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Disable a user at once: no new sign-ins, open sessions end within a minute."""
    from lingtan.core.users import disable_user
    from lingtan.kernel.db import get_engine

    with get_engine(_database_url()).begin() as conn:
        info = disable_user(conn, name)
    if info is None:
        typer.echo(f"no user {name.strip().lower()!r} (lingtan users list)", err=True)
        raise typer.Exit(1)
    typer.echo(f"user {info.username} ({info.role}) disabled")


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from stdin instead of asking twice")] = False,
) -> None:
    """Set a user's password; their open sessions end within a minute."""
    from lingtan.core import users
    from lingtan.kernel.db import get_engine

    engine = get_engine(_database_url())
    with engine.connect() as conn:
        known = users.get_user(conn, name) is not None
    if not known:  # before asking for a password that would be thrown away
        typer.echo(f"no user {name.strip().lower()!r} (lingtan users list)", err=True)
        raise typer.Exit(1)
    try:
        password = _read_password(password_stdin)
        with engine.begin() as conn:
            info = users.set_password(conn, name, password)
    except users.UserError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if info is None:
        typer.echo(f"no user {name.strip().lower()!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"password of {info.username} changed")



@alerts_app.command("list")
def alerts_list() -> None:
    """Every alert rule with its current state per subject."""
    from lingtan.core.alerts import store
    from lingtan.kernel.db import get_engine

    with get_engine(_database_url()).connect() as conn:
        rules, _ = store.list_rules(conn, 10_000, 0)
        states = store.list_states(conn)
    typer.echo(f"{'id':>5}  {'kind':26}  {'enabled':7}  name")
    for r in rules:
        d = r.definition
        enabled = "yes" if r.enabled else "no"
        typer.echo(f"{r.id:>5}  {d.get('kind', '?'):26}  {enabled:7}  {d.get('name', '')}")
        for s in (s for s in states if s.rule_id == r.id):
            value = "-" if s.last_value is None else f"{s.last_value:g}"
            acked = f", acknowledged by {s.acked_by}" if s.acked_by else ""
            since = f"{s.since:%Y-%m-%d %H:%M:%S%z}"
            typer.echo(f"       {s.subject}: {s.state} since {since}, value {value}{acked}")


@alerts_app.command("test")
def alerts_test(
    rule_id: Annotated[int, typer.Argument(metavar="RULE", min=1, max=2**63 - 1,
                                           help="the rule's id (lingtan alerts list)")],
) -> None:
    """Evaluate a rule now and print what it would send. Nothing is stored or sent."""
    from lingtan.core.alerts import store
    from lingtan.core.alerts.rules import RuleError
    from lingtan.core.queries import NotFound
    from lingtan.kernel.db import get_engine

    with get_engine(_database_url()).connect() as conn:
        try:
            outcomes = store.dry_run(conn, rule_id, get_settings(), clock.now())
        except (NotFound, RuleError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    if not outcomes:
        typer.echo("the rule's scope has no subjects (no meters of that role?)")
    for o in outcomes:
        m = o.measurement
        value = "no data" if m.observation.value is None else f"{m.observation.value:g} {m.unit}"
        change = (f"{o.previous.state} -> {o.step.state.state}" if o.step.transition
                  else f"stays {o.previous.state}")
        muted = " (muted by a silence)" if o.muted else ""
        limit = f"{m.condition.op} {m.condition.threshold:g} {m.unit}"
        typer.echo(f"{o.subject.key}: {value} ({limit}); {change}{muted}")
        for (_, label), text in m.details:  # e.g. why a deviation rule has no baseline
            typer.echo(f"  {label}: {text if isinstance(text, str) else text[1]}")
        if not o.messages:
            typer.echo("  would send nothing")
        for msg in o.messages:
            typer.echo(f"  would send to {msg.recipient} ({msg.language}):")
            typer.echo("    " + msg.mail.text.rstrip().replace("\n", "\n    "))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        typer.echo(f"--date: expected a day as YYYY-MM-DD (got {text!r})", err=True)
        raise typer.Exit(2) from None


def _cli_user() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"


PeriodOpt = Annotated[str, typer.Option(help="month | year (the site's own calendar)")]
DateOpt = Annotated[str, typer.Option("--date", help="a day inside the period, e.g. 2026-11-01")]


@periods_app.command("close")
def periods_close(
    site_id: Annotated[str, typer.Argument(metavar="SITE")],
    date_: DateOpt,
    period: PeriodOpt = "month",
    note: Annotated[str, typer.Option(help="kept with the closing")] = "",
    by: Annotated[str | None, typer.Option(help="who closes it (default: cli:<login name>)")] = None,
) -> None:
    """Close a month or year: store its KPIs, GHG inventory and energy balance as they stand now,
    with the factors used and their coverage, so its reports stop changing when late data or a
    new factor arrives. Refused while the period is still running (it ends at midnight in the
    site's time zone) and when it is already closed."""
    from lingtan.core import closings
    from lingtan.core.factors import FactorError
    from lingtan.core.queries import NotFound
    from lingtan.kernel.db import get_engine

    day = _day(date_)
    who = by or _cli_user()
    try:
        with get_engine(_database_url()).begin() as conn:
            d = closings.close_period(conn, site_id, period, day, who, note)
    except (ValueError, FactorError) as exc:  # a bad period, or no factor valid for it
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except (NotFound, closings.PeriodStateError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    p, k = d.period, d.kpis
    assert k is not None
    c, e = k.carbon, k.energy

    def fig(f: object) -> str:
        value = getattr(f, "value", None)
        return "no data" if value is None else f"{value:.6g} {getattr(f, 'unit', '')}"

    typer.echo(f"closed {p.kind} {p.label} of {site_id} ({p.start.isoformat()} to {p.end.isoformat()}) "
               f"as closing {d.closing.id if d.closing else '?'} by {who}")
    typer.echo(f"  Scope 1 {fig(c.scope1_t)}; Scope 2 location-based {fig(c.scope2_location_t)}, "
               f"market-based {fig(c.scope2_market_t)}; energy {fig(e.tce_total)}; "
               f"electricity data coverage {k.electricity.consumption_kwh.coverage:.1%}")
    typer.echo(f"  {len(d.factors or [])} factor(s) stored with their sources; reports for this period now "
               "show these figures, with a restatement if they are recomputed differently later")


@periods_app.command("list")
def periods_list(
    site_id: Annotated[str, typer.Argument(metavar="SITE")],
    period: PeriodOpt = "month",
) -> None:
    """A site's months (or years), newest first, from its first data to now: running, open
    (ended, figures still provisional) or closed, with who closed it and when."""
    from lingtan.core import closings
    from lingtan.core.queries import NotFound
    from lingtan.kernel import periods
    from lingtan.kernel.db import get_engine

    try:
        with get_engine(_database_url()).connect() as conn:
            found = closings.list_periods(conn, site_id, period)
    except periods.PeriodError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except NotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{'period':8}  {'status':8}  {'closed at (site time)':22}  {'closed by':24}  reopened  note")
    for s in found:
        c = s.closing
        at = c.closed_at.astimezone(s.period.start.tzinfo).strftime("%Y-%m-%d %H:%M") if c else "-"
        typer.echo(f"{s.period.label:8}  {s.status:8}  {at:22}  {c.closed_by if c else '-':24}  "
                   f"{s.reopened:>8}  {c.note if c else ''}")


@periods_app.command("reopen")
def periods_reopen(
    site_id: Annotated[str, typer.Argument(metavar="SITE")],
    date_: DateOpt,
    reason: Annotated[str, typer.Option(help="why; kept in the period's history")],
    period: PeriodOpt = "month",
    by: Annotated[str | None, typer.Option(help="who reopens it (default: cli:<login name>)")] = None,
) -> None:
    """Reopen a closed period (an admin action): its reports become provisional again and it can
    be closed anew. The old closing is kept, with who reopened it, when and why."""
    from lingtan.core import closings
    from lingtan.core.queries import NotFound
    from lingtan.kernel import periods
    from lingtan.kernel.db import get_engine

    day = _day(date_)
    try:
        with get_engine(_database_url()).begin() as conn:
            d = closings.reopen_period(conn, site_id, period, day, by or _cli_user(), reason)
    except (periods.PeriodError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except (NotFound, closings.PeriodStateError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"reopened {d.period.kind} {d.period.label} of {site_id}; {len(d.history)} closing(s) in its "
               "history")


if __name__ == "__main__":
    app()


def _programme_call(what: str, call: Callable[[Any], T]) -> T:
    """Run one programme question, saying what it does; errors name the field and exit non-zero."""
    from lingtan.core.carbon import ConversionError
    from lingtan.core.programme_figures import FigureError
    from lingtan.core.programme_schema import ProgrammeError
    from lingtan.core.queries import NotFound
    from lingtan.kernel.db import get_engine

    typer.echo(f"{what} …", err=True)
    try:
        with get_engine(_database_url()).connect() as conn:
            return call(conn)
    except (ProgrammeError, FigureError) as exc:
        typer.echo(f"{'.'.join(map(str, exc.loc))}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except ConversionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except NotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@programme_app.command("targets")
def programme_targets(site_id: Annotated[str, typer.Argument(metavar="SITE")]) -> None:
    """Every target of the site: base, current value, projection to the target year and status."""
    from lingtan.core import programme_service

    _, found = _programme_call(f"computing the targets of {site_id}",
                               lambda conn: programme_service.targets(conn, site_id, clock.now()))
    if not found:
        typer.echo(f"{site_id} has no targets (the site file's targets: section)")
    for t in found:
        def shown(v: float | None, unit: str = t.unit) -> str:
            return "—" if v is None else (f"{v:.1%}" if unit == "ratio" else f"{v:,.4g} {unit}")
        projection = t.projection.value if t.projection else None
        typer.echo(f"{t.id}: {t.status.replace('_', ' ')}: base {t.base_year} "
                   f"{shown(t.base.value if t.base else None)}, target {t.target_year} "
                   f"{shown(t.target_value)}, projection {shown(projection)}")
        typer.echo(f"  {t.reason}")


@programme_app.command("balance")
def programme_balance(
    site_id: Annotated[str, typer.Argument(metavar="SITE")],
    year: Annotated[int, typer.Option(help="the calendar year (site-local)")],
) -> None:
    """The year's net balance: gross Scope 1 + 2, green instruments, offsets retired for it, net."""
    from lingtan.core import programme_service

    b = _programme_call(f"computing the {year} net balance of {site_id}",
                        lambda conn: programme_service.neutrality(conn, site_id, year, clock.now()))
    t = lambda v: "—" if v is None else f"{v:,.3f} tCO2e"  # noqa: E731
    typer.echo(f"{site_id} {b.label} ({b.source}), rule {b.rule}")
    typer.echo(f"  before instruments {t(b.before_instruments_t)}; instruments −{t(b.instruments_t)}; "
               f"gross {t(b.gross_t)}")
    typer.echo(f"  offsets −{t(b.offsets_t)} ({len(b.offsets)} retirement(s)); net {t(b.net_t)}")
    typer.echo(f"  carbon-neutral: {'yes' if b.neutral else 'no'}: {b.reason}")


@programme_app.command("report")
def programme_report_cmd(
    site_id: Annotated[str, typer.Argument(metavar="SITE")],
    year: Annotated[int, typer.Option(help="the calendar year reported")],
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write (.pdf or .xlsx)")],
    lang: Annotated[str, typer.Option(help="zh | en: the PDF's language")] = "zh",
) -> None:
    """Write the annual zero-carbon report (PDF or XLSX, by the file's suffix)."""
    from lingtan.core import programme_report, report_formats

    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("pdf", "xlsx"):
        typer.echo(f"--output: the file must end in .pdf or .xlsx (got {output.name!r})", err=True)
        raise typer.Exit(2)
    if lang not in ("zh", "en"):
        typer.echo(f"--lang: zh or en (got {lang!r})", err=True)
        raise typer.Exit(2)
    r = _programme_call(f"computing the {year} zero-carbon report of {site_id}",
                        lambda conn: programme_report.zero_carbon_report(conn, site_id, year, clock.now()))
    head, sub = programme_report.title(r, lang)  # type: ignore[arg-type]
    body, _ = report_formats.render(programme_report.report_tables(r), fmt, title=head, subtitle=sub,
                                    lang=lang)  # type: ignore[arg-type]
    output.write_bytes(body)
    typer.echo(f"wrote {output} ({len(body):,} bytes, {fmt}, {lang})")
