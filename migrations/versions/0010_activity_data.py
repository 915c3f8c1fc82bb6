"""Manually entered activity data: unmetered fuels and refrigerant top-ups, with evidence.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per invoice or ledger line. Dates are the site's local days (period_end exclusive);
    # the amount stays as entered (unit, density) so the evidence can be checked against it, and
    # a refrigerant's GWP is stored with its source so later library changes restate nothing.
    op.execute(
        """
        CREATE TABLE activity_data (
            id               bigserial PRIMARY KEY,
            site_id          text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
            period_start     date NOT NULL,
            period_end       date NOT NULL,
            carrier          text NOT NULL CHECK (carrier IN ('natural_gas', 'diesel', 'gasoline', 'lpg',
                                                              'fuel_oil', 'raw_coal', 'refrigerant')),
            amount           double precision NOT NULL CHECK (amount > 0),
            unit             text NOT NULL,
            density_kg_per_l double precision CHECK (density_kg_per_l > 0),
            gas              text,
            gwp              double precision CHECK (gwp > 0),
            gwp_source       text,
            evidence         text NOT NULL CHECK (evidence <> ''),
            note             text NOT NULL DEFAULT '',
            entered_by       text NOT NULL,
            entered_at       timestamptz NOT NULL DEFAULT now(),
            CHECK (period_end > period_start),
            CHECK ((carrier = 'refrigerant') = (gas IS NOT NULL AND gwp IS NOT NULL AND gwp_source IS NOT NULL))
        )
        """
    )
    op.execute("CREATE INDEX activity_data_site ON activity_data (site_id, period_start)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS activity_data")
