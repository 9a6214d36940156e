"""Back-flow leases (issue 15): one row per source naming the instance that walks its export
now and until when (gateway.store.backflow_lease). Two gateways sharing a database would both
start the scheduled walk; the page fence (the checkpoint's cursor) kept the data right, but the
loser logged an error every interval. A lease row works on SQLite and PostgreSQL alike (an
advisory lock would need PostgreSQL and a connection held for the whole walk).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

from gateway.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backflow_leases",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("source", name="pk_backflow_leases"),
    )


def downgrade() -> None:
    op.drop_table("backflow_leases")
