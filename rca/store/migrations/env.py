"""Alembic environment: runs on the connection that `rca.store.engine.migrate` hands over."""

from alembic import context

from rca.store.engine import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
