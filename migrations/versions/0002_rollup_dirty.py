"""Dirty rollup buckets: writers mark what they touched, a refresher re-materialises it.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written in the same transaction as the readings, so a crash can never leave a bucket
    # stale without a record that it needs refreshing.
    op.execute(
        """
        CREATE TABLE rollup_dirty (
            meter_id  text NOT NULL,
            quantity  text NOT NULL,
            bucket    timestamptz NOT NULL,
            PRIMARY KEY (meter_id, quantity, bucket)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS rollup_dirty")
