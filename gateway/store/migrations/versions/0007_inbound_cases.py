"""Inbound cases (issue 15): cases Tianjin, Hebei and the national platform submit to Beijing.

One row per (partner, partner case number) with the receipt the gateway issued and the case in
Beijing's unified format (``body``, sealed at rest when sealing is on). The case travels to the
city platform as a ``deliveries`` row of kind ``inbound_case`` hanging off one anchor row of
``cases`` per partner (``INBOUND-<PARTNER>``), as back-flow batches do (0006 says why the outbox
keeps ``case_id`` NOT NULL).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from gateway.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_cases",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("partner_case_no", sa.String(64), nullable=False),
        sa.Column("receipt_no", sa.String(32), nullable=False),
        sa.Column("application_no", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=True),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_cases"),
        sa.UniqueConstraint("partner", "partner_case_no",
                            name="uq_inbound_cases_partner_partner_case_no"),
        sa.UniqueConstraint("receipt_no", name="uq_inbound_cases_receipt_no"),
    )


def downgrade() -> None:
    op.drop_table("inbound_cases")
