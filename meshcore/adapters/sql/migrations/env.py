"""Alembic environment: the URL comes from the caller's configuration, never from a file."""

from __future__ import annotations

from alembic import context

from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.tables import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with tenancy.across_tenants(engine).connect() as connection:  # any tenant's rows
        _migrate(connection)
    engine.dispose()


def _migrate(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
