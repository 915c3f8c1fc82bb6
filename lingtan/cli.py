"""The `lingtan` command: one entry point for every component."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lingtan import logs
from lingtan.settings import get_settings

app = typer.Typer(help="Lingtan: energy metering gateway and carbon dashboard.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
gateway_app = typer.Typer(help="Field gateway: collect meter readings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(gateway_app, name="gateway")


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
    from lingtan.migrate import upgrade

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


@app.command("simulate")
def simulate(
    site: Annotated[Path | None, typer.Option(help="site file (default: the built-in demo-plant)")] = None,
    speed: Annotated[float | None, typer.Option(help="simulated seconds per wall-clock second")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (same seed, same plant)")] = None,
    state: Annotated[Path | None, typer.Option(help="file to resume from and save state to")] = None,
) -> None:
    """Run the simulated demo plant: Modbus TCP meters and MQTT telemetry."""
    from simulators.runner import run_simulators

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
    from lingtan.demo import run_demo

    raise typer.Exit(run_demo(get_settings()))


if __name__ == "__main__":
    app()
