"""Compressor hours: air delivered and loaded-minute power and flow per compressor hour.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Maintained by the refresher with the other rollups (lingtan.core.rollups.refresh_compressor_hours).
    # A plain table also under TimescaleDB: one row per compressor-hour is small, and a
    # continuous aggregate cannot join three series of the 1-minute rollup.
    op.execute(
        """
        CREATE TABLE compressor_1h (
            bucket            timestamptz NOT NULL,
            meter_id          text NOT NULL,
            flow_minutes      integer NOT NULL,
            air_m3            double precision,
            loaded_minutes    integer NOT NULL,
            loaded_flow_sum   double precision,
            loaded_kw_minutes integer NOT NULL,
            loaded_kw_sum     double precision,
            PRIMARY KEY (meter_id, bucket)
        )
        """
    )
    # Hours already in the rollups are filled from them, a meter at a time.
    from lingtan.core.rollups import backfill_compressor_hours

    backfill_compressor_hours(op.get_bind().connection.driver_connection)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS compressor_1h")
