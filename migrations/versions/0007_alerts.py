"""Alerting: rules, per-subject state, event history, silences and the e-mail outbox.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The definition is validated by lingtan.core.alerts.rules.Rule before it is stored; jsonb keeps every
    # rule kind in one table, so a new kind needs no migration.
    op.execute(
        """
        CREATE TABLE alert_rules (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL,
            enabled     boolean NOT NULL DEFAULT true,
            definition  jsonb NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One row per rule and scope subject ("site:<id>" or "meter:<id>"): a role-scoped rule
    # tracks each meter of the role on its own.
    op.execute(
        """
        CREATE TABLE alert_states (
            rule_id           bigint NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
            subject           text NOT NULL,
            state             text NOT NULL CHECK (state IN ('ok', 'pending', 'firing', 'resolved')),
            since             timestamptz NOT NULL,
            last_value        double precision,
            last_evaluated_at timestamptz,
            notified          boolean NOT NULL DEFAULT false,
            last_notified_at  timestamptz,
            acked_by          text,
            acked_at          timestamptz,
            PRIMARY KEY (rule_id, subject)
        )
        """
    )
    # History outlives the rule: no foreign key, the rule's name is copied into each event.
    op.execute(
        """
        CREATE TABLE alert_events (
            id         bigserial PRIMARY KEY,
            rule_id    bigint NOT NULL,
            rule_name  text NOT NULL,
            subject    text NOT NULL,
            kind       text NOT NULL,
            severity   text NOT NULL,
            time       timestamptz NOT NULL,
            value      double precision,
            threshold  double precision,
            details    jsonb NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("CREATE INDEX alert_events_time ON alert_events (time DESC)")
    op.execute("CREATE INDEX alert_events_rule ON alert_events (rule_id, time DESC)")
    # A silence names a rule, a site or a meter (any combination, all must match); a silence on
    # a site or meter alone is a maintenance window.
    op.execute(
        """
        CREATE TABLE alert_silences (
            id         bigserial PRIMARY KEY,
            rule_id    bigint REFERENCES alert_rules(id) ON DELETE CASCADE,
            site_id    text,
            meter_id   text,
            starts_at  timestamptz NOT NULL,
            ends_at    timestamptz NOT NULL,
            comment    text NOT NULL DEFAULT '',
            created_by text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            CHECK (ends_at > starts_at)
        )
        """
    )
    # Every notification is a row here until delivered; the unique key makes enqueueing
    # idempotent, so a re-run evaluation or a second evaluator never queues a message twice.
    op.execute(
        """
        CREATE TABLE alert_outbox (
            id              bigserial PRIMARY KEY,
            idempotency_key text NOT NULL UNIQUE,
            event_id        bigint,
            recipient       text NOT NULL,
            language        text NOT NULL,
            subject         text NOT NULL,
            body_text       text NOT NULL,
            body_html       text NOT NULL,
            image           bytea,
            status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
            attempts        integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error      text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            sent_at         timestamptz
        )
        """
    )
    op.execute("CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE status = 'pending'")


def downgrade() -> None:
    for table in ("alert_outbox", "alert_silences", "alert_events", "alert_states", "alert_rules"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
