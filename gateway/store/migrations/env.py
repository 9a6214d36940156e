"""Alembic environment: runs on the connection the gateway hands over (see migrate.py)."""

from alembic import context

from gateway.store.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the gateway's own runner is supported
    raise RuntimeError("run migrations with `gateway db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
