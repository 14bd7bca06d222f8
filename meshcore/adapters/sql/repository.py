"""What every repository of a unit of work shares. Every query is filtered by the tenant;
none commits."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from meshcore.adapters.sealing import Sealer


class Repository:
    """What every repository of a unit of work holds: its connection, tenant and sealer."""

    def __init__(self, connection: sa.Connection, tenant_id: str, sealer: Sealer) -> None:
        self._db, self._tenant_id, self._sealer = connection, tenant_id, sealer

    def _insert_absent(self, table: sa.Table, rows: Sequence[dict[str, object]]) -> list[Row]:
        """Insert rows whose primary key is not taken yet; answers the rows that went in.

        Rows go as parameters, which SQLAlchemy batches into one INSERT; RETURNING tells what
        went in (psycopg reports no rowcount for this statement).
        """
        statement = insert_absent(self._db.dialect.name, table)
        return self._db.execute(statement, list(rows)).mappings().all()


@functools.cache
def insert_absent(dialect: str, table: sa.Table) -> sa.Insert:
    """INSERT of rows whose primary key is not taken yet, returning the rows that went in."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    return insert(table).on_conflict_do_nothing().returning(*table.c)
