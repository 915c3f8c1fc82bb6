"""A private Mosquitto for fault tests: started on a free port, stoppable and restartable.

The shared broker on :1883 must stay up for everyone else, so tests that kill the broker use
their own. Persistence is on, so sessions and queued messages survive a restart like in
production. Extra config lines (``sys_interval 1``, ``max_queued_messages 10``) replace the
defaults of the same name.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Mosquitto:
    """``defaults``: only what a test needs to reach it (port, anonymous access, log file) —
    queue limits, persistence and everything else as Mosquitto ships them. ``extra`` lines are
    added, replacing a line of the same setting."""

    def __init__(self, workdir: Path, extra: Sequence[str] = (), *, defaults: bool = False) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # as root Mosquitto would switch to user mosquitto, who cannot write a private tmp dir
            "user root",
            f"log_dest file {workdir}/mosquitto.log",
        ]
        if not defaults:
            lines += ["persistence true", f"persistence_location {workdir}/",
                      "max_queued_messages 100000"]
        replaced = {line.split()[0] for line in extra}
        lines = [line for line in lines if line.split()[0] not in replaced] + list(extra)
        self.conf.write_text("\n".join(lines) + "\n")

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
