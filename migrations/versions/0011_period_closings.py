"""Closed periods: a month's or year's inventory as it stood when it was closed.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per closing. Reopening never deletes or rewrites the figures: it stamps the row
    # (reopened_*), and a later closing is a new row, so the table is the period's history.
    # The figures are the engine's own results serialized as JSON (the KPI window, the GHG
    # inventory and the energy balance), so a changed engine cannot change what was closed.
    # No ON DELETE CASCADE: a closed inventory is an audit record that outlives a site edit.
    op.execute(
        """
        CREATE TABLE period_closings (
            id             bigserial PRIMARY KEY,
            site_id        text NOT NULL REFERENCES sites(id),
            period         text NOT NULL CHECK (period IN ('month', 'year')),
            period_start   date NOT NULL,
            start_at       timestamptz NOT NULL,
            end_at         timestamptz NOT NULL,
            timezone       text NOT NULL,
            kpis           jsonb NOT NULL,
            inventory      jsonb NOT NULL,
            energy_balance jsonb NOT NULL,
            factors        jsonb NOT NULL,
            coverage       jsonb NOT NULL,
            closed_by      text NOT NULL,
            closed_at      timestamptz NOT NULL,
            note           text NOT NULL DEFAULT '',
            reopened_by    text,
            reopened_at    timestamptz,
            reopen_reason  text,
            CHECK (end_at > start_at),
            CHECK (closed_at >= end_at),
            CHECK ((reopened_at IS NULL) = (reopened_by IS NULL)),
            CHECK ((reopened_at IS NULL) = (reopen_reason IS NULL))
        )
        """
    )
    # At most one closing in force per period; reopened ones stay as history beside it.
    op.execute("CREATE UNIQUE INDEX period_closings_in_force"
               " ON period_closings (site_id, period, period_start) WHERE reopened_at IS NULL")
    op.execute("CREATE INDEX period_closings_site ON period_closings (site_id, period, period_start)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS period_closings")
