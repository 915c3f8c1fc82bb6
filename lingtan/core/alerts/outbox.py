"""The e-mail outbox: every notification is a row until an SMTP server has accepted it.

Enqueueing runs in the evaluator's transaction, with the state change that caused it, and is
idempotent on ``idempotency_key`` (rule, subject, episode, notice, recipient): re-running an
evaluation or a second evaluator can never queue a message twice.

Delivery claims one due row at a time with ``FOR UPDATE SKIP LOCKED`` and holds the row lock
while talking to SMTP, so two deliverers never send the same row; the row is marked sent in the
same transaction. A failure leaves the row pending with a later ``next_attempt_at``: an SMTP
outage delays mail but loses none. The one window for a duplicate is a crash after the server
accepted the message and before the commit; the Message-ID is derived from the key so mail
clients fold such a duplicate into one.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from lingtan.core.alerts.mail import Mailer, Rendered, build_message
from lingtan.kernel import clock
from lingtan.kernel.settings import Settings

log = logging.getLogger("lingtan.core.alerts.outbox")

# Retry after 30 s, then doubling up to an hour: quick recovery from a blip, and an SMTP relay
# that is down for a day is asked only ~24 times an hour-apart instead of being hammered.
BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 3600.0


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones (attempts ≥ 1)."""
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1)))


def enqueue(conn: sa.Connection, key: str, recipient: str, language: str, mail: Rendered,
            event_id: int | None, now: datetime) -> bool:
    """Queue a message unless one with this key exists; True if it was queued now."""
    row = conn.execute(sa.text(
        "INSERT INTO alert_outbox (idempotency_key, event_id, recipient, language, subject, body_text,"
        " body_html, image, next_attempt_at, created_at)"
        " VALUES (:k, :e, :r, :l, :s, :t, :h, :i, :now, :now)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
    ), {"k": key, "e": event_id, "r": recipient, "l": language, "s": mail.subject, "t": mail.text,
        "h": mail.html, "i": mail.image, "now": now}).first()
    return row is not None


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0
    error: str | None = None


_CLAIM = sa.text(
    "SELECT id, idempotency_key, recipient, subject, body_text, body_html, image, attempts"
    " FROM alert_outbox WHERE status = 'pending' AND next_attempt_at <= :now"
    " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)


def deliver(engine: sa.Engine, settings: Settings, now: datetime | None = None, limit: int = 100
            ) -> DeliveryResult:
    """Send up to ``limit`` due messages over one SMTP session. Stops at the first connection-level
    failure (the server is down: every other message would fail the same way)."""
    result = DeliveryResult()
    if not settings.smtp_host:
        return result
    at = now or clock.now()
    mailer: Mailer | None = None
    try:
        for _ in range(limit):
            with engine.begin() as conn:
                row = conn.execute(_CLAIM, {"now": at}).first()
                if row is None:
                    break
                rid, key, recipient, subject, text, body_html, image, attempts = row
                msg = build_message(settings.smtp_from, recipient, subject, text, body_html,
                                    bytes(image) if image is not None else None, key)
                try:
                    if mailer is None:
                        mailer = Mailer(settings).__enter__()
                    mailer.send(msg)
                except (smtplib.SMTPException, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    conn.execute(sa.text(
                        "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = :next,"
                        " last_error = :err WHERE id = :id"
                    ), {"id": rid, "next": at + backoff(attempts + 1), "err": error[:1000]})
                    result.failed += 1
                    result.error = error
                    log.warning("alert e-mail not sent, will retry",
                                extra={"outbox_id": rid, "attempts": attempts + 1, "error": error})
                    # A refused recipient is this message's problem; anything else is the server's.
                    if not isinstance(exc, smtplib.SMTPRecipientsRefused):
                        break
                    continue
                conn.execute(sa.text(
                    "UPDATE alert_outbox SET status = 'sent', sent_at = :now, attempts = attempts + 1,"
                    " last_error = NULL WHERE id = :id"
                ), {"id": rid, "now": clock.now()})
                result.sent += 1
    finally:
        if mailer is not None:
            mailer.__exit__(None, None, None)
    return result
