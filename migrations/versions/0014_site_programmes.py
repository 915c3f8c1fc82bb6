"""The zero-carbon programme of a site: one validated document per site.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Stored whole, like the structure: targets refer to the base year and history, and the
    # offset register is checked as a whole (a credit claimed twice), so it is written as a whole.
    op.execute(
        """
        CREATE TABLE site_programmes (
            site_id    text PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
            programme  jsonb NOT NULL,
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS site_programmes")
