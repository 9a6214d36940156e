"""The due index by partner: ``(state, partner, next_attempt_at)`` instead of
``(state, next_attempt_at)`` (issue 12).

The worker asks, per partner, for its due deliveries in due order. With the partner missing from
the index, SQLite answered a claim from ``ix_deliveries_receipt (partner)``: every delivery the
partner ever had, delivered ones included, sorted per claim; and "which partners have work" read
every due row of every partner. Both grew with the table, so a backlog (or a year of history)
slowed every claim round. With the partner in the index, each partner's due rows are one range
in due order: a claim reads the rows it takes, the partners' question one row per partner.

Upgrading: building the index reads the whole deliveries table and, on PostgreSQL, blocks writes
to it meanwhile (a plain ``CREATE INDEX``); on a table of millions of rows run ``gateway db
upgrade`` in a quiet moment, with the gateways stopped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index("ix_deliveries_due", "deliveries", ["state", "partner", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
