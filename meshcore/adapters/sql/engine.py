"""Engines for Postgres (psycopg 3) and SQLite, each tuned for many worker threads."""

from __future__ import annotations

import sqlalchemy as sa

from meshcore.adapters.sql import tenancy


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> sa.Engine:
    """An engine for `url`; a plain postgresql:// URL is driven by psycopg 3.

    A process holds at most pool_size + max_overflow Postgres connections; threads beyond
    that wait for one. Size it so every process of the fleet fits the server's
    max_connections (100 by default).
    """
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=40,
        )
        sa.event.listen(engine, "connect", _tune_sqlite)
        sa.event.listen(engine, "begin", _begin_immediate)
        return engine
    # No pre-ping: it is a round trip before every transaction. A connection the server
    # dropped fails its statement instead (RecordUnavailable: a 503 or a retried message),
    # and SQLAlchemy then discards every pooled connection older than the failure.
    engine = sa.create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800
    )
    tenancy.install(engine)  # row-level security: each transaction says whose rows it sees
    return engine


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets the API read while a worker writes; foreign keys make deletes cascade.
    # pysqlite's own transaction handling is off so that _begin_immediate decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_immediate(connection: sa.Connection) -> None:
    # SQLite ignores SELECT ... FOR UPDATE; taking the write lock at BEGIN gives the same
    # serialisation and avoids the upgrade deadlock of two readers turning writers.
    # An AUTOCOMMIT connection must get no BEGIN: nothing would commit it, and the pool's
    # rollback on return would silently undo its writes (the agents' call counts were lost so).
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")
