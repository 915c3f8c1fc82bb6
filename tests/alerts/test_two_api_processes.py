"""Acceptance: two real `lingtan api` processes, each running the alert scheduler, send a firing
e-mail exactly once; when the leader is killed the other takes over and sends the resolution once.

Which process leads is read from the server: the backend holding the scheduler's advisory lock,
its client port in pg_stat_activity, and the API process that owns the socket with that port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.scheduler import LOCK_KEY
from lingtan.core.alerts import store
from lingtan.core.alerts.rules import parse_rule
from lingtan.kernel.db import get_engine
from lingtan.kernel.reading import Reading
from tests.alerts.conftest import PASSWORD, USER, SmtpServer
from tests.conftest import free_port
from tests.pipeline import store_readings

REPO = Path(__file__).parents[2]
RECIPIENTS = {"energy@example.com": "en", "nengyuan@example.com": "zh"}
TIMEOUT_S = 90.0  # generous: start-up, a rule's first evaluation, SMTP, a take-over
GRACE_S = 2.0  # several scheduler ticks (0.2 s) in which a duplicate would show up

# The scheduler names its session "lingtan-alerts <host>:<pid>" (api/scheduler.py), which
# tells the processes apart over TCP and Unix sockets alike.
LEADER_PORT = sa.text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
CONTENDER_PORTS = sa.text(
    "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'lingtan-alerts %'"
    " AND datname = current_database()"
)


@dataclass
class ApiProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-40:]
        return f"--- {self.name} log ---\n" + "\n".join(lines)


def wait_for(what: str, condition: Callable[[], bool], procs: list[ApiProcess]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n" + "\n".join(p.log_tail() for p in procs))


@pytest.fixture
def api_processes(db: str, smtp: SmtpServer, tmp_path: Path) -> Iterator[list[ApiProcess]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGTAN_")}
    env.update({
        "LINGTAN_DATABASE_URL": db, "LINGTAN_API_HOST": "127.0.0.1",
        "LINGTAN_ALERTS_SCHEDULER": "true", "LINGTAN_ALERTS_TICK_SECONDS": "0.2",
        "LINGTAN_SMTP_HOST": "127.0.0.1", "LINGTAN_SMTP_PORT": str(smtp.port), "LINGTAN_SMTP_TLS": "none",
        "LINGTAN_SMTP_USER": USER, "LINGTAN_SMTP_PASSWORD": PASSWORD,
        "LINGTAN_SMTP_FROM": "lingtan@example.com", "LINGTAN_SMTP_TIMEOUT_SECONDS": "5",
        "LINGTAN_DASHBOARD_URL": "http://dashboard.example/", "LINGTAN_DATA_DIR": str(tmp_path / "data"),
        "LINGTAN_LOG_FORMAT": "text", "LINGTAN_LOG_LEVEL": "INFO",
    })
    procs: list[ApiProcess] = []
    try:
        for name in ("api-a", "api-b"):
            port, log = free_port(), tmp_path / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen([sys.executable, "-m", "lingtan.cli", "api"], cwd=REPO,
                                        env={**env, "LINGTAN_API_PORT": str(port)},
                                        stdout=out, stderr=subprocess.STDOUT)
            procs.append(ApiProcess(name, port, proc, log))
        yield procs
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()


def seed(db: str) -> int:
    """A meter whose last reading is an hour old, and an offline rule on it (added by the caller)."""
    engine = get_engine(db)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO sites (id, name) VALUES ('s', 'S')"))
        conn.execute(sa.text("INSERT INTO meters (id, site_id, name) VALUES ('m', 's', 'm')"))
    hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    store_readings(db, [Reading(hour_ago - timedelta(minutes=i), "m", "active_power", 5.0) for i in range(5)])
    rule = parse_rule({"kind": "offline", "name": "m online", "scope": {"site_id": "s", "meter_id": "m"},
                       "after_s": 300, "interval_s": 10,
                       "recipients": [{"email": e, "language": lang} for e, lang in RECIPIENTS.items()]})
    with engine.begin() as conn:
        return store.create_rule(conn, rule)


def notices(smtp: SmtpServer) -> dict[str, list[str]]:
    """Per recipient, the notice of each message received (the subject's "[Lingtan …]" part)."""
    out: dict[str, list[str]] = {r: [] for r in RECIPIENTS}
    for m in list(smtp.inbox.messages):
        out.setdefault(str(m["To"]), []).append(str(m["Subject"]).split("]")[0].removeprefix("[Lingtan "))
    return out


def test_two_api_processes_mail_once_and_the_survivor_takes_over(db: str, smtp: SmtpServer,
                                                                 api_processes: list[ApiProcess]) -> None:
    engine = get_engine(db)
    procs = api_processes
    lock = {"hi": LOCK_KEY >> 32, "lo": LOCK_KEY & 0xFFFFFFFF}

    def leader_port() -> str | None:
        with engine.connect() as conn:
            ports = conn.execute(LEADER_PORT, lock).scalars().all()
        assert len(ports) <= 1  # an advisory lock has one holder at most
        return ports[0] if ports else None

    def owner(session: str) -> ApiProcess:
        [p] = [p for p in procs if session.endswith(f":{p.proc.pid}")]
        return p

    # Both serve HTTP, one holds the lock, and both schedulers have a session in the race for it.
    wait_for("both APIs to answer", lambda: all(p.healthy() for p in procs), procs)
    wait_for("a leader", lambda: leader_port() is not None, procs)

    def both_contend() -> bool:
        with engine.connect() as conn:
            ports = conn.execute(CONTENDER_PORTS).scalars().all()
        return sorted(owner(port).name for port in ports) == ["api-a", "api-b"]

    wait_for("both schedulers to try the lock", both_contend, procs)
    port = leader_port()
    assert port is not None
    leader = owner(port)
    [follower] = [p for p in procs if p is not leader]

    # The rule exists only now that both are running: either could evaluate it if both led.
    seed(db)
    wait_for("the firing e-mails", lambda: all(notices(smtp)[r] for r in RECIPIENTS), procs)
    time.sleep(GRACE_S)
    assert notices(smtp) == {"energy@example.com": ["FIRING"], "nengyuan@example.com": ["告警触发"]}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*), count(*) FILTER (WHERE status = 'sent')"
                                    " FROM alert_outbox")).one() == (2, 2)
    assert owner(leader_port() or "none") is leader  # the same process led throughout

    # Kill the leader without a clean shutdown; then the meter reports again.
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(timeout=30)
    store_readings(db, [Reading(datetime.now(UTC).replace(microsecond=0), "m", "active_power", 6.0)])

    wait_for("the resolved e-mails", lambda: all(len(notices(smtp)[r]) == 2 for r in RECIPIENTS), procs)
    time.sleep(GRACE_S)
    assert notices(smtp) == {"energy@example.com": ["FIRING", "RESOLVED"],
                             "nengyuan@example.com": ["告警触发", "告警恢复"]}
    # The survivor is the leader now and the one that sent them (the other process is dead).
    assert leader.proc.poll() == -signal.SIGKILL and follower.proc.poll() is None
    new_port = leader_port()
    assert new_port is not None and owner(new_port) is follower
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*), count(*) FILTER (WHERE status = 'sent')"
                                    " FROM alert_outbox")).one() == (4, 4)
        states = conn.execute(sa.text("SELECT state FROM alert_states")).scalars().all()
    assert states == ["resolved"]
