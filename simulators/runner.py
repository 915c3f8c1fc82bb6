"""`lingtan simulate`: run the demo plant's meters in real (or scaled) time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lingtan.kernel.mqtt import parse_mqtt_url
from simulators import statefile
from simulators.modbus_server import ModbusHandle, PortInUseError, check_port_free, start_modbus_server
from simulators.mqtt_publisher import (
    PROTOCOLS,
    PlantPublisher,
    start_plant_publisher,
    topic_for,
)
from simulators.registers import UNITS
from simulators.site import LINE, MQTT_SUBMETERS, SITE_ID, SiteModel

log = logging.getLogger(__name__)

TICK_S = 0.25  # registers are refreshed at least twice as often as promised (0.5 s)
MQTT_PERIOD_S = 5.0
SAVE_PERIOD_S = 60.0  # a kill -9 loses at most this much counting
COARSE_AFTER_S = 3600.0  # gaps longer than this are stepped a minute at a time
COARSE_STEP_S = 60


def run_simulators(
    *,
    site_file: Path | None,
    host: str,
    modbus_port: int,
    mqtt_url: str | None,
    mqtt_protocol: str,
    seed: int,
    speed: float,
    state_file: Path | None,
    retrofit: datetime | None = None,
) -> None:
    """Serve the demo plant until SIGINT/SIGTERM, then save state and return.

    Simulated time = start + speed × wall time elapsed. With ``state_file`` present the
    plant resumes from it and catches up to now, counting through the gap as real meters
    would (if an earlier run at speed > 1 left it ahead of the clock, it resumes there).
    ``retrofit`` (compressor 1 to variable speed, ``SiteModel``) applies to a fresh plant only:
    a resumed one keeps the retrofit it was started with.
    Errors the operator must fix (port taken, bad URL, unreadable state) exit with a
    message instead of a traceback.
    """
    if site_file is not None:
        raise SystemExit(
            f"custom site files are not supported: only the built-in {SITE_ID} exists "
            f"(run without --site; got {site_file})"
        )
    try:
        _check_settings(speed, mqtt_url, mqtt_protocol)
        check_port_free(host, modbus_port)
        model = _initial_model(seed, state_file, retrofit)
    except (ValueError, PortInUseError) as exc:
        raise SystemExit(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread:
            for sig in signals:
                loop.add_signal_handler(sig, stop.set)
        try:
            await serve_simulators(model, host=host, modbus_port=modbus_port, mqtt_url=mqtt_url,
                                   mqtt_protocol=mqtt_protocol, speed=speed,
                                   state_file=state_file, stop=stop)
        finally:
            if on_main_thread:
                for sig in signals:
                    loop.remove_signal_handler(sig)

    try:
        asyncio.run(main())
    except PortInUseError as exc:
        raise SystemExit(str(exc)) from None


def _check_settings(speed: float, mqtt_url: str | None, mqtt_protocol: str) -> None:
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if mqtt_url is not None:
        parse_mqtt_url(mqtt_url)
        if mqtt_protocol not in PROTOCOLS:
            raise ValueError(f"MQTT protocol must be one of {sorted(PROTOCOLS)}, got {mqtt_protocol!r}")


def _initial_model(seed: int, state_file: Path | None, retrofit: datetime | None = None) -> SiteModel:
    if state_file is not None and state_file.exists():
        model = statefile.load(state_file)
        log.info("resuming simulator state", extra={"state_file": str(state_file),
                                                    "sim_time": model.now.isoformat(),
                                                    "seed": model.seed})
        return model
    now = datetime.now(UTC).replace(microsecond=0)
    return SiteModel(seed, now, retrofit=retrofit)


async def catch_up(model: SiteModel, stop: asyncio.Event) -> None:
    """Fast-forward to the wall clock in chunks, staying responsive to a stop request."""
    gap = (datetime.now(UTC) - model.now).total_seconds()
    if gap >= 1.0:
        log.info("catching up to the wall clock", extra={"gap_hours": round(gap / 3600.0, 2)})
    while not stop.is_set():
        gap = (datetime.now(UTC) - model.now).total_seconds()
        if gap < 1.0:
            return
        chunk = min(gap, 6 * 3600.0)
        model.advance_to(model.now + timedelta(seconds=chunk),
                         max_step=COARSE_STEP_S if gap > COARSE_AFTER_S else 1)
        await asyncio.sleep(0)


async def serve_simulators(
    model: SiteModel,
    *,
    host: str,
    modbus_port: int,
    mqtt_url: str | None,
    mqtt_protocol: str,
    speed: float,
    state_file: Path | None,
    stop: asyncio.Event,
) -> None:
    """Run until ``stop`` is set, then shut down and save the state (when a file is given)."""
    handle: ModbusHandle | None = None
    publisher: PlantPublisher | None = None
    try:
        await catch_up(model, stop)
        handle = await start_modbus_server(host, modbus_port, model)
        await handle.publish(model)
        if mqtt_url is not None:
            publisher = start_plant_publisher(mqtt_url, mqtt_protocol)
        _log_startup(handle, mqtt_url, speed, model)
        await _tick_loop(model, handle, publisher, speed, state_file, stop)
    finally:
        if publisher is not None:
            publisher.stop()
        if handle is not None:
            await handle.stop()
        if state_file is not None:
            statefile.save(model, state_file)
            log.info("simulator state saved", extra={"state_file": str(state_file),
                                                     "sim_time": model.now.isoformat()})


async def _tick_loop(model: SiteModel, handle: ModbusHandle, publisher: PlantPublisher | None,
                     speed: float, state_file: Path | None, stop: asyncio.Event) -> None:
    origin = model.now
    mono0 = time.monotonic()
    next_mqtt = mono0
    next_save = mono0 + SAVE_PERIOD_S
    while not stop.is_set():
        mono = time.monotonic()
        target = origin + timedelta(seconds=speed * (mono - mono0))
        gap = (target - model.now).total_seconds()
        model.advance_to(target, max_step=COARSE_STEP_S if gap > COARSE_AFTER_S else 1)
        await handle.publish(model)
        if publisher is not None and mono >= next_mqtt:
            publisher.publish(model)
            # Keep a 5-s cadence but never burst to make up for a stall.
            next_mqtt = max(next_mqtt + MQTT_PERIOD_S, mono)
        if state_file is not None and mono >= next_save:
            statefile.save(model, state_file)
            next_save = mono + SAVE_PERIOD_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=TICK_S)


def _log_startup(handle: ModbusHandle, mqtt_url: str | None, speed: float, model: SiteModel) -> None:
    units = ", ".join(f"{unit} {device}" for unit, device in UNITS.items())
    if mqtt_url is None:
        mqtt_part = "MQTT off (no LINGTAN_MQTT_URL)"
        broker = None
    else:
        a = parse_mqtt_url(mqtt_url)
        broker = f"mqtt://{a.host}:{a.port}"
        mqtt_part = (f"MQTT {topic_for('+')} ({LINE} and {len(MQTT_SUBMETERS)} sub-meters) every "
                     f"{MQTT_PERIOD_S:g} s on {broker}")
    log.info(
        f"simulating {SITE_ID}: Modbus TCP on {handle.host}:{handle.port} (units {units}); {mqtt_part}",
        extra={"modbus": f"{handle.host}:{handle.port}", "units": dict(UNITS), "mqtt": broker,
               "topics": [topic_for(d) for d in (LINE, *MQTT_SUBMETERS)] if broker else None,
               "speed": speed, "seed": model.seed, "sim_time": model.now.isoformat()},
    )
