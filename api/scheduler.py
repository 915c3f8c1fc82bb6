"""The alert scheduler: APScheduler 3.11 ticking in each API process, exactly one of them evaluating.

Leadership is a PostgreSQL session advisory lock held on a dedicated connection: it is released
by the server the moment that connection dies (process killed, host gone), so another process
takes over on its next tick without any lease timing of our own. Every tick, a process that is
not the leader tries the lock; the leader checks that its connection still answers.

Each rule keeps its own interval (``interval_s``); a tick evaluates the rules that are due and
then delivers due e-mails from the outbox. Outbox delivery is safe from any number of processes
(rows are claimed with SKIP LOCKED) but is done by the leader only, to keep one SMTP client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
import sqlalchemy as sa

from lingtan.core.alerts import outbox
from lingtan.core.alerts.evaluate import evaluate_rule
from lingtan.core.alerts.rules import RuleError, parse_rule
from lingtan.kernel import clock
from lingtan.kernel.db import get_engine, libpq_url
from lingtan.kernel.settings import Settings

log = logging.getLogger("api.scheduler")

# Any fixed 64-bit number unique to this purpose among the database's advisory locks:
# the ASCII of "LTALERTS".
LOCK_KEY = 0x4C54414C45525453


def session_name() -> str:
    """The scheduler's database session name: which host and process it is (at connect time, so
    a forked worker names itself)."""
    return f"lingtan-alerts {socket.gethostname()[:30]}:{os.getpid()}"


class Leader:
    """Holds (or tries to take) the alert-evaluator advisory lock on its own connection."""

    def __init__(self, database_url: str, key: int = LOCK_KEY) -> None:
        self.url = libpq_url(database_url)
        self.key = key
        self.conn: psycopg.Connection | None = None
        self.is_leader = False

    def check(self) -> bool:
        """True if this process is the leader now (taking the lock if it is free)."""
        try:
            if self.conn is None or self.conn.closed:
                self.is_leader = False
                # named after this process, so pg_stat_activity and pg_locks tell which one leads
                self.conn = psycopg.connect(self.url, autocommit=True, application_name=session_name())
            if self.is_leader:
                self.conn.execute("SELECT 1")  # the lock lives as long as this session does
            else:
                self.is_leader = bool(self.conn.execute("SELECT pg_try_advisory_lock(%s)",
                                                        (self.key,)).fetchone()[0])  # type: ignore[index]
        except psycopg.Error as exc:
            log.warning("alert leader connection failed", extra={"error": str(exc)})
            self.close()
        return self.is_leader

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                if self.is_leader and not self.conn.closed:
                    # Unlock before closing: the server ends a closed session asynchronously, and a
                    # clean shutdown should hand over at once.
                    self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                self.conn.close()
            self.conn = None
        self.is_leader = False


@dataclass
class TickResult:
    leader: bool
    evaluated: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    sent: int = 0


class AlertScheduler:
    def __init__(self, settings: Settings, database_url: str | None = None) -> None:
        url = database_url or settings.database_url
        if not url:
            raise RuntimeError("LINGTAN_DATABASE_URL is not set")
        self.settings = settings
        self.engine = get_engine(url)
        self.leader = Leader(url)
        self.last_run: dict[int, datetime] = {}
        self._scheduler = None

    def tick(self, now: datetime | None = None) -> TickResult:
        """One round: if leader, evaluate due rules (each in its own transaction) and send due mail."""
        now = now or clock.now()
        if not self.leader.check():
            # A former leader forgets its timings: whoever leads next starts afresh.
            self.last_run.clear()
            return TickResult(False)
        result = TickResult(True)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, definition FROM alert_rules WHERE enabled"
                                        " ORDER BY id")).all()
        for rule_id, definition in rows:
            try:
                rule = parse_rule(definition)
            except RuleError as exc:
                result.failed[rule_id] = str(exc)
                continue
            last = self.last_run.get(rule_id)
            if last is not None and now - last < timedelta(seconds=rule.interval_s):
                continue
            self.last_run[rule_id] = now
            try:
                with self.engine.begin() as conn:
                    evaluate_rule(conn, rule_id, rule, self.settings, now)
                result.evaluated.append(rule_id)
            except Exception as exc:
                # One broken rule (a deleted site, a bad meter) must not stop the others.
                log.exception("alert rule evaluation failed", extra={"rule_id": rule_id})
                result.failed[rule_id] = f"{type(exc).__name__}: {exc}"
        result.sent = outbox.deliver(self.engine, self.settings, now).sent
        return result

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:
            # APScheduler would log and carry on too; this keeps the record in our logger.
            log.exception("alert scheduler tick failed")

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(timezone="UTC")
        # One tick at a time, and a late tick is merged rather than queued behind a slow one.
        scheduler.add_job(self._safe_tick, "interval", seconds=self.settings.alerts_tick_seconds,
                          id="alerts-tick", max_instances=1, coalesce=True,
                          next_run_time=clock.now())
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.leader.close()
