"""Latest readings: the newest reading of every (meter, quantity), kept by the writers.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "Now" values (power now, a meter's last reading, offline checks) read one row per series
    # here instead of walking the time index of `readings`: on a TimescaleDB hypertable every such
    # lookup plans across all chunks (compressed ones too), so its cost grew with the retention.
    # A plain table on both PostgreSQL and TimescaleDB; every writer of `readings` upserts the
    # newest row of each series it wrote, in the same transaction, and only when it is newer
    # (lingtan/core/latest.py), so late data never overwrites a newer value.
    op.execute(
        """
        CREATE TABLE latest_readings (
            meter_id  text NOT NULL,
            quantity  text NOT NULL,
            time      timestamptz NOT NULL,
            value     double precision NOT NULL,
            quality   smallint NOT NULL,
            PRIMARY KEY (meter_id, quantity)
        )
        """
    )
    # Filled from the readings already stored: the series are found by skipping along the unique
    # (meter_id, quantity, time) index one series at a time, then each series' newest row is one
    # index probe, so the backfill reads a few rows per series, never the history.
    op.execute(
        """
        WITH RECURSIVE series AS (
            (SELECT meter_id, quantity FROM readings ORDER BY meter_id, quantity LIMIT 1)
            UNION ALL
            SELECT n.meter_id, n.quantity FROM series s CROSS JOIN LATERAL (
                SELECT r.meter_id, r.quantity FROM readings r
                WHERE (r.meter_id, r.quantity) > (s.meter_id, s.quantity)
                ORDER BY r.meter_id, r.quantity LIMIT 1) n
        )
        INSERT INTO latest_readings (meter_id, quantity, time, value, quality)
        SELECT s.meter_id, s.quantity, r.time, r.value, r.quality
        FROM series s CROSS JOIN LATERAL (
            SELECT time, value, quality FROM readings r
            WHERE r.meter_id = s.meter_id AND r.quantity = s.quantity
            ORDER BY time DESC LIMIT 1) r
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS latest_readings")
