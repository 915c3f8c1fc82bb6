"""A private Mosquitto for fault tests: started on a free port, stoppable and restartable.

The shared broker on :1883 must stay up for everyone else, so tests that kill the broker use
their own. Persistence is on, so sessions and queued messages survive a restart like in
production.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Mosquitto:
    """``defaults``: only what a test needs to reach it (port, anonymous access, log file) —
    queue limits and everything else as Mosquitto ships them."""

    def __init__(self, workdir: Path, *, defaults: bool = False, extra: str = "") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        reach = (f"listener {self.port} 127.0.0.1\n"
                 "allow_anonymous true\n"
                 # as root Mosquitto would switch to user mosquitto, who cannot write a private tmp dir
                 "user root\n"
                 f"log_dest file {workdir}/mosquitto.log\n")
        self.conf.write_text(reach if defaults else reach + (
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_queued_messages 100000\n") + extra)

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log()}") from None
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its configuration again (ACLs included) without a restart."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Mosquitto writes its persistence file on the way out
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
