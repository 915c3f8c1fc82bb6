"""Sites, meters, readings and rollups; TimescaleDB features when the extension is there.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from lingtan.kernel.db import timescaledb_available
from lingtan.kernel.settings import get_settings

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLLUPS = ("readings_1m", "readings_15m", "readings_1h", "readings_1d")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sites (
            id          text PRIMARY KEY,
            name        text NOT NULL,
            timezone    text NOT NULL DEFAULT 'Asia/Shanghai',
            grid_region text NOT NULL DEFAULT 'national',
            factor_set  text NOT NULL DEFAULT 'mee-2023',
            created_at  timestamptz DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE meters (
            id          text PRIMARY KEY,
            site_id     text NOT NULL REFERENCES sites(id),
            name        text NOT NULL,
            role        text,
            protocol    text,
            gateway_id  text,
            created_at  timestamptz DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX meters_site ON meters (site_id)")
    op.execute(
        """
        CREATE TABLE readings (
            time      timestamptz NOT NULL,
            meter_id  text NOT NULL,
            quantity  text NOT NULL,
            value     double precision NOT NULL,
            quality   smallint NOT NULL DEFAULT 0,
            CONSTRAINT readings_meter_quantity_time UNIQUE (meter_id, quantity, time)
        )
        """
    )
    for name in ROLLUPS:
        op.execute(
            f"""
            CREATE TABLE {name} (
                bucket    timestamptz NOT NULL,
                meter_id  text NOT NULL,
                quantity  text NOT NULL,
                count     integer NOT NULL,
                min       double precision NOT NULL,
                max       double precision NOT NULL,
                avg       double precision NOT NULL,
                first     double precision NOT NULL,
                last      double precision NOT NULL,
                PRIMARY KEY (meter_id, quantity, bucket)
            )
            """
        )

    bind = op.get_bind()
    if not timescaledb_available(bind):
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.execute(
        "SELECT create_hypertable('readings', 'time', chunk_time_interval => interval '1 day')"
    )
    op.execute(
        """
        ALTER TABLE readings SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'meter_id, quantity',
            timescaledb.compress_orderby = 'time'
        )
        """
    )
    op.execute("SELECT add_compression_policy('readings', interval '7 days')")
    days = int(get_settings().raw_retention_days)
    op.execute(sa.text(f"SELECT add_retention_policy('readings', interval '{days} days')"))
    for name in ROLLUPS:
        op.execute(
            f"SELECT create_hypertable('{name}', 'bucket', chunk_time_interval => interval '30 days')"
        )


def downgrade() -> None:
    for name in (*ROLLUPS, "readings", "meters", "sites"):
        op.execute(f"DROP TABLE IF EXISTS {name}")
