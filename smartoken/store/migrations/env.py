"""Alembic environment: migrations run on the connection handed in by smartoken.store.db."""

from alembic import context

from smartoken.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always run through smartoken.store.db
    raise RuntimeError("run migrations through `smartoken migrate`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
