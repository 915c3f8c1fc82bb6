"""Each structure node's electricity per band and largest quarter hour, per whole day.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per day and key (the nodes' counters, the tariff, the zone): every node's figures
    # packed as float64, read whole (lingtan/core/structure_cache.py explains the locking).
    op.execute(
        """
        CREATE TABLE structure_day_cache (
            key     text NOT NULL,
            day     timestamptz NOT NULL,
            site_id text NOT NULL,
            data    bytea NOT NULL,
            PRIMARY KEY (key, day)
        )
        """
    )
    op.execute("CREATE INDEX structure_day_cache_day ON structure_day_cache (day)")
    op.execute("CREATE INDEX structure_day_cache_site ON structure_day_cache (site_id, day)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS structure_day_cache")
