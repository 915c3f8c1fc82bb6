"""Energy baselines and savings projects of a site: one validated document per site.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Stored whole, like the programme: baselines and projects are checked together (ids once,
    # meters and nodes of the site), so they are written as a whole.
    op.execute(
        """
        CREATE TABLE site_savings (
            site_id    text PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
            savings    jsonb NOT NULL,
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS site_savings")
