"""Shared circuit breakers, operator audit trail, replay budget columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

from gateway.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("attempts_base", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("replays", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "partner_breakers",
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("partner", name="pk_partner_breakers"),
    )
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_actions"),
    )
    op.create_index("ix_operator_actions_target", "operator_actions", ["target"])


def downgrade() -> None:
    op.drop_table("operator_actions")
    op.drop_table("partner_breakers")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("replays")
        batch.drop_column("attempts_base")
