"""Gateway heartbeats: each gateway's latest health snapshot, for the API.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per gateway, upserted: the latest state is what the API shows; history belongs
    # in Prometheus, which scrapes /metrics on the gateway itself.
    op.execute(
        """
        CREATE TABLE gateway_heartbeats (
            gateway_id text PRIMARY KEY,
            site_id    text,
            time       timestamptz NOT NULL,
            status     jsonb NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS gateway_heartbeats")
