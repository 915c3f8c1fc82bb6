"""Site energy model, green-power purchases, factor overrides, API keys, counter deltas in rollups.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLLUPS = ("readings_1m", "readings_15m", "readings_1h", "readings_1d")
COUNTERS = ("active_energy_import", "active_energy_export", "gas_volume", "steam_mass",
            "heat_energy", "water_volume", "production_count", "running_hours", "loaded_hours")


def upgrade() -> None:
    # Energy-model parameters are validated by one pydantic schema (lingtan/core/site_schema.py); JSON
    # keeps the schema in one place, and a new parameter does not need a migration.
    op.execute("ALTER TABLE sites ADD COLUMN params jsonb NOT NULL DEFAULT '{}'::jsonb")
    op.execute("ALTER TABLE meters ADD COLUMN params jsonb NOT NULL DEFAULT '{}'::jsonb")
    op.execute(
        """
        CREATE TABLE green_purchases (
            id           bigserial PRIMARY KEY,
            site_id      text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
            kind         text NOT NULL CHECK (kind IN ('gec', 'trade')),
            period_start date NOT NULL,
            period_end   date NOT NULL,
            certificates double precision CHECK (certificates >= 0),
            kwh          double precision NOT NULL CHECK (kwh >= 0),
            reference    text NOT NULL DEFAULT '',
            created_at   timestamptz NOT NULL DEFAULT now(),
            CHECK (period_end > period_start)
        )
        """
    )
    op.execute("CREATE INDEX green_purchases_site ON green_purchases (site_id, period_start)")
    op.execute(
        """
        CREATE TABLE factor_overrides (
            id         bigserial PRIMARY KEY,
            site_id    text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
            kind       text NOT NULL,
            subject    text NOT NULL,
            value      double precision NOT NULL CHECK (value >= 0),
            unit       text NOT NULL,
            source     text NOT NULL,
            valid_from date,
            valid_to   date,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE NULLS NOT DISTINCT (site_id, kind, subject, valid_from)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE api_keys (
            id           bigserial PRIMARY KEY,
            prefix       text NOT NULL UNIQUE,
            hash         text NOT NULL,
            role         text NOT NULL CHECK (role IN ('viewer', 'engineer', 'admin')),
            name         text NOT NULL DEFAULT '',
            created_at   timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz,
            revoked_at   timestamptz
        )
        """
    )
    # Counter increase per bucket with reset, rollover and spike handling (lingtan/core/energy.py):
    # delta = increase over reading pairs ending in the bucket whose gap is short enough to be
    # covered; covered = seconds those pairs span; gap_delta = increase across longer gaps or
    # resets, real energy whose timing is unknown. NULL for quantities that are not counters.
    for table in ROLLUPS:
        op.execute(f"ALTER TABLE {table} ADD COLUMN delta double precision,"
                   " ADD COLUMN covered double precision, ADD COLUMN gap_delta double precision")
    # Existing counter buckets are re-materialised by the refresher with the new columns.
    op.execute(
        "INSERT INTO rollup_dirty (meter_id, quantity, bucket)"
        " SELECT meter_id, quantity, bucket FROM readings_1m"
        f" WHERE quantity IN ({', '.join(repr(c) for c in COUNTERS)}) ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    for table in ROLLUPS:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS delta,"
                   " DROP COLUMN IF EXISTS covered, DROP COLUMN IF EXISTS gap_delta")
    for name in ("api_keys", "factor_overrides", "green_purchases"):
        op.execute(f"DROP TABLE IF EXISTS {name}")
    op.execute("ALTER TABLE meters DROP COLUMN IF EXISTS params")
    op.execute("ALTER TABLE sites DROP COLUMN IF EXISTS params")
