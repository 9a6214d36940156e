"""Status events (the case's timeline), status columns on deliveries, status pushes as deliveries.

Existing deliveries become ``kind = 'case'`` through the server default; SQLite adds the columns
in place (``ALTER TABLE ADD COLUMN``: batch mode does not need to copy the table for that).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from gateway.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("result", sa.String(16), nullable=True))
        batch.add_column(sa.Column("status_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("status_checked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="case"))
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    op.create_index("ix_deliveries_status_poll", "deliveries",
                    ["partner", "state", "status_checked_at"])
    # a partner names a case by its receipt: callbacks find it, reconcile walks in its order
    op.create_index("ix_deliveries_receipt", "deliveries", ["partner", "receipt_no"])
    op.create_table(
        "status_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("delivery_id", sa.String(36), nullable=True),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("event_key", sa.String(128), nullable=False),
        sa.Column("case_ref", sa.String(200), nullable=True),
        sa.Column("partner_code", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("flag", sa.String(16), nullable=True),
        sa.Column("elicences", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE",
                                name="fk_status_events_case_id_cases"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="CASCADE",
                                name="fk_status_events_delivery_id_deliveries"),
        sa.PrimaryKeyConstraint("id", name="pk_status_events"),
        sa.UniqueConstraint("partner", "event_key", name="uq_status_events_partner_event_key"),
    )
    op.create_index("ix_status_events_case", "status_events", ["case_id", "received_at"])
    op.create_index("ix_status_events_delivery", "status_events", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("status_events")
    op.drop_index("ix_deliveries_receipt", "deliveries")
    op.drop_index("ix_deliveries_status_poll", "deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("payload")
        batch.drop_column("kind")
        batch.drop_column("status_checked_at")
        batch.drop_column("status_at")
        batch.drop_column("result")
