"""Table definitions shared by migrations, the gateway sink and the API queries."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False, server_default="Asia/Shanghai"),
    sa.Column("grid_region", sa.Text, nullable=False, server_default="national"),
    sa.Column("factor_set", sa.Text, nullable=False, server_default="mee-2023"),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

meters = sa.Table(
    "meters",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("site_id", sa.Text, sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("protocol", sa.Text, nullable=True),
    sa.Column("gateway_id", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

readings = sa.Table(
    "readings",
    metadata,
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("meter_id", sa.Text, nullable=False),
    sa.Column("quantity", sa.Text, nullable=False),
    sa.Column("value", sa.Float(53), nullable=False),
    sa.Column("quality", sa.SmallInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("meter_id", "quantity", "time", name="readings_meter_quantity_time"),
)

ROLLUP_INTERVALS: dict[str, str] = {
    "readings_1m": "1 minute",
    "readings_15m": "15 minutes",
    "readings_1h": "1 hour",
    "readings_1d": "1 day",
}


def _rollup_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meter_id", sa.Text, nullable=False),
        sa.Column("quantity", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("min", sa.Float(53), nullable=False),
        sa.Column("max", sa.Float(53), nullable=False),
        sa.Column("avg", sa.Float(53), nullable=False),
        sa.Column("first", sa.Float(53), nullable=False),
        sa.Column("last", sa.Float(53), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "quantity", "bucket"),
    )


rollups: dict[str, sa.Table] = {name: _rollup_table(name) for name in ROLLUP_INTERVALS}
