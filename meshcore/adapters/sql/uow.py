"""The unit of work: one connection, one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import sqlalchemy as sa

from meshcore.adapters.sql.repositories import (
    SqlAgentRepository,
    SqlMemoryRepository,
    SqlNetworkRepository,
    SqlStepRepository,
    SqlTaskRepository,
)


class SqlUnitOfWork:
    def __init__(self, engine: sa.Engine, tenant_id: str) -> None:
        self._engine, self._tenant_id = engine, tenant_id

    def __enter__(self) -> Self:
        self._connection = self._engine.connect()
        self._transaction = self._connection.begin()
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
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._connection.close()

    def commit(self) -> None:
        self._transaction.commit()
        # Services may commit more than once in a block: the next writes get a new transaction.
        self._transaction = self._connection.begin()

    def rollback(self) -> None:
        self._transaction.rollback()
        self._transaction = self._connection.begin()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def __call__(self, tenant_id: str) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, tenant_id)

    def is_reachable(self) -> bool:
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True
