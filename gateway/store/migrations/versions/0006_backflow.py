"""National data back-flow (issue 15): records by kind and natural key, checkpoints per source.

The outbox is ``deliveries`` (``kind = 'backflow'``, the batch in ``payload``), unchanged: each
source's batches hang off one anchor row in ``cases`` (gateway.store.backflow), written when the
first page is stored, so ``deliveries.case_id`` stays NOT NULL. Relaxing it would rebuild
``deliveries`` on SQLite, and with ``foreign_keys=ON`` (every gateway connection sets it; it cannot
change inside the migration's transaction) dropping the old table cascades into ``attempts`` and
``status_events``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from gateway.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backflow_records",
        sa.Column("rkey", sa.String(240), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("natural_key", sa.String(200), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rkey", name="pk_backflow_records"),
    )
    op.create_index("ix_backflow_records_source_seq", "backflow_records", ["source", "seq"])
    op.create_table(
        "backflow_checkpoints",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("kept", sa.BigInteger(), nullable=False),
        sa.Column("replaced", sa.BigInteger(), nullable=False),
        sa.Column("ignored", sa.BigInteger(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_backflow_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("backflow_checkpoints")
    op.drop_index("ix_backflow_records_source_seq", "backflow_records")
    op.drop_table("backflow_records")
