"""Dashboard users: sign-in names with argon2 password hashes and the same roles as API keys.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # User names are stored lower-case (lingtan/core/users.py folds them) and the CHECK keeps it so: then
    # the plain UNIQUE constraint is case-insensitive, and lookups can use its index directly.
    op.execute(
        """
        CREATE TABLE users (
            id              bigserial PRIMARY KEY,
            username        text NOT NULL UNIQUE CHECK (username = lower(username) AND username <> ''),
            password_hash   text NOT NULL,
            role            text NOT NULL CHECK (role IN ('viewer', 'engineer', 'admin')),
            language        text CHECK (language IN ('zh', 'en')),
            created_at      timestamptz NOT NULL DEFAULT now(),
            last_sign_in_at timestamptz,
            disabled_at     timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS users")
