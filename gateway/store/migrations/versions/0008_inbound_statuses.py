"""Inbound case statuses (issue 15): what the city platform reports about a case a partner
submitted to Beijing. Each event is kept once per event id (``inbound_status_events``), the
case's progress after the state machine is kept on its ``inbound_cases`` row (``status``,
``status_at``, ``status_result``), and each change is queued to the submitting partner as a
``deliveries`` row of kind ``inbound_status``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from gateway.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_cases") as batch:
        batch.add_column(sa.Column("status", sa.String(32), nullable=True))
        batch.add_column(sa.Column("status_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("status_result", sa.String(16), nullable=True))
    op.create_table(
        "inbound_status_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("inbound_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("flag", sa.String(16), nullable=True),
        sa.Column("delivery_id", sa.String(36), nullable=True),
        sa.Column("reported_by", sa.String(128), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["inbound_id"], ["inbound_cases.id"], ondelete="CASCADE",
                                name="fk_inbound_status_events_inbound_id_inbound_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_status_events"),
        sa.UniqueConstraint("inbound_id", "event_id",
                            name="uq_inbound_status_events_inbound_id_event_id"),
    )


def downgrade() -> None:
    op.drop_table("inbound_status_events")
    with op.batch_alter_table("inbound_cases") as batch:
        batch.drop_column("status_result")
        batch.drop_column("status_at")
        batch.drop_column("status")
