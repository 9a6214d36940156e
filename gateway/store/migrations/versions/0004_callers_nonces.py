"""Callers and anti-replay (issue 14): the shared nonce store and the submitting caller of each case.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from gateway.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # cases stored before callers existed keep a null submitter: only read_any callers see them
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("submitted_by", sa.String(128), nullable=True))
    op.create_table(
        "nonces",
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "nonce", name="pk_nonces"),
    )
    op.create_index("ix_nonces_expires_at", "nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_nonces_expires_at", "nonces")
    op.drop_table("nonces")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("submitted_by")
