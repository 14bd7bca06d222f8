"""The record as the management commands (`mesh keys`, `mesh tenant`) open it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from meshcore.settings import Settings

if TYPE_CHECKING:
    import sqlalchemy as sa  # imported when used: `mesh --help` stays quick


@contextmanager
def record_engine(settings: Settings, *, migrate: bool = True) -> Iterator[sa.Engine]:
    """An engine on the record `settings` name, one connection; the embedded file is brought
    up to date first (it may not exist yet: keys can be made before the first `mesh serve`)."""
    from meshcore.adapters.sql.engine import create_engine

    url = settings.resolved_database_url()
    if migrate and settings.database_url is None:
        from meshcore.adapters.sql.migrate import upgrade

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(url)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        engine.dispose()


def require_table(engine: sa.Engine, table: str, hint: str = "") -> None:
    """A real server's record that was never migrated says so in one line."""
    import sqlalchemy as sa

    from meshcore.adapters.sql.uow import UNAVAILABLE, unavailable

    try:
        present = sa.inspect(engine).has_table(table)
    except UNAVAILABLE as exc:
        raise unavailable(exc) from exc
    if not present:
        raise click.ClickException(
            f"the database has no {table} table yet: run `mesh db upgrade`{hint}"
        )
