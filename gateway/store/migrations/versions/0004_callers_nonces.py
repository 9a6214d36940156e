"""Callers and anti-replay (issue 14): the shared nonce store and the submitting caller of each case.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
