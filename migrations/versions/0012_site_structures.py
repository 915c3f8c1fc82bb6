"""The metering structure of a site: one validated document per site.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One document per site, replaced whole: a structure is checked as a whole (cycles, a meter
    # counted twice), so it is stored as a whole, and a failed write leaves the old one intact.
    op.execute(
        """
        CREATE TABLE site_structures (
            site_id    text PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
            structure  jsonb NOT NULL,
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS site_structures")
