"""The unit of work: one connection, one transaction, rolled back unless committed."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Self

import sqlalchemy as sa
import structlog

from meshcore.adapters.sql.repositories import (
    SqlAgentRepository,
    SqlMemoryRepository,
    SqlNetworkRepository,
    SqlStepRepository,
    SqlTaskRepository,
)
from meshcore.adapters.sql.tables import tasks
from meshcore.domain.errors import RecordUnavailable
from meshcore.domain.task import Priority, TaskStatus
from meshcore.ports import TaskRef

log = structlog.get_logger(__name__)

# What a database that went away, or a transaction it aborted, raises; worth a retry.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)
ACTIVE = [s.value for s in TaskStatus if not s.is_terminal]


class SqlUnitOfWork:
    def __init__(self, engine: sa.Engine, tenant_id: str, *, autocommit: bool = False) -> None:
        self._engine, self._tenant_id, self._autocommit = engine, tenant_id, autocommit

    def __enter__(self) -> Self:
        try:
            self._connection = self._engine.connect()
            if self._autocommit:
                self._connection = self._connection.execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            self._transaction = None if self._autocommit else self._connection.begin()
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        db, tenant = self._connection, self._tenant_id
        self.networks = SqlNetworkRepository(db, tenant)
        self.agents = SqlAgentRepository(db, tenant)
        self.tasks = SqlTaskRepository(db, tenant)
        self.steps = SqlStepRepository(db, tenant)
        self.memory = SqlMemoryRepository(db, tenant)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
            self._connection.close()
        except UNAVAILABLE as close_error:
            # The connection died with the server; the pool discards it.
            log.warning("uow.close_failed", error=type(close_error).__name__)
        if isinstance(exc, UNAVAILABLE):
            raise unavailable(exc) from exc

    def commit(self) -> None:
        if self._transaction is None:
            return  # autocommit: each statement committed as it ran
        self._transaction.commit()
        # Services may commit more than once in a block: the next writes get a new transaction.
        self._transaction = self._connection.begin()

    def rollback(self) -> None:
        if self._transaction is None:
            return
        self._transaction.rollback()
        self._transaction = self._connection.begin()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def __call__(self, tenant_id: str, *, autocommit: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, tenant_id, autocommit=autocommit)

    def is_reachable(self) -> bool:
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def stalled(self, before: datetime, limit: int) -> list[TaskRef]:
        """Unfinished tasks of every tenant whose heartbeat stopped before `before`.

        The one query that crosses tenants: the sweeper serves the whole fleet, and re-drives
        each task through its own tenant's unit of work.
        """
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    sa.select(tasks.c.tenant_id, tasks.c.id, tasks.c.priority)
                    .where(
                        tasks.c.status.in_(ACTIVE),
                        tasks.c.heartbeat_at < before,
                        sa.not_(tasks.c.held),  # waiting for POST .../process, by request
                    )
                    .order_by(tasks.c.heartbeat_at)
                    .limit(limit)
                ).all()
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        return [TaskRef(tenant, task_id, Priority(priority)) for tenant, task_id, priority in rows]


def unavailable(exc: BaseException) -> RecordUnavailable:
    log.warning("record.unavailable", error=str(getattr(exc, "orig", exc))[:300])
    return RecordUnavailable("the record (database) is unavailable; try again shortly")
