"""Series cache: per-bucket sums of a set of counter series, derived from the rollups.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A year of hourly KPI points sums several series over many meters per bucket; reading those
    # sums back is an order of magnitude cheaper than re-aggregating the rollups on every call.
    # Rows are derived data: the refresher deletes the buckets it rewrites (api/services/
    # series_cache.py explains the locking), and a changed set of meters is a different spec.
    op.execute(
        """
        CREATE TABLE series_cache (
            spec       text NOT NULL,
            resolution text NOT NULL,
            bucket     timestamptz NOT NULL,
            site_id    text NOT NULL,
            sums       double precision[],
            PRIMARY KEY (spec, bucket)
        )
        """
    )
    op.execute("CREATE INDEX series_cache_bucket ON series_cache (resolution, bucket)")
    op.execute("CREATE INDEX series_cache_site ON series_cache (site_id, resolution)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS series_cache")
