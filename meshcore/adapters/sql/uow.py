"""The unit of work: one connection, one transaction, rolled back unless committed.

Its connection is scoped to the tenant (tenancy.py): on Postgres, row-level security admits
only the tenant's rows to each transaction it begins, whatever a query forgot to filter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self
from uuid import UUID

import sqlalchemy as sa
import structlog

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.agent_types import SqlAgentTypeRepository
from meshcore.adapters.sql.idempotency import SqlIdempotencyRepository
from meshcore.adapters.sql.lifetimes import SqlLifetimeRepository
from meshcore.adapters.sql.memory import SqlMemoryRepository
from meshcore.adapters.sql.networks import SqlAgentRepository, SqlNetworkRepository
from meshcore.adapters.sql.quotas import SqlQuotaRepository
from meshcore.adapters.sql.ratings import SqlRatingRepository
from meshcore.adapters.sql.steps import SqlStepRepository
from meshcore.adapters.sql.tables import idempotency_keys, tasks, webhook_deliveries
from meshcore.adapters.sql.tasks import SqlTaskRepository
from meshcore.adapters.sql.tool_calls import SqlToolCallRepository
from meshcore.adapters.sql.webhooks import SqlWebhookRepository
from meshcore.domain.errors import NotFound, RecordUnavailable
from meshcore.domain.task import Priority, TaskChange, TaskStatus
from meshcore.domain.webhooks import DeliveryStatus
from meshcore.ports import DeliveryRef, TaskRef

log = structlog.get_logger(__name__)

# What a database that went away, or a transaction it aborted, raises; worth a retry.
# A pool with no connection free within its timeout is as unavailable as a server that is
# down: the caller answers 503 or the message is retried, rather than the work failing.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
ACTIVE = [s.value for s in TaskStatus if not s.is_terminal]
AWAITING = TaskStatus.AWAITING_APPROVAL.value

# Told of the tasks a transaction changed, once it has committed (the live notifications).
Announce = Callable[[Sequence[TaskChange]], None]
# Told of the webhook deliveries a transaction made, once it has committed (to send them).
SendDeliveries = Callable[[Sequence[DeliveryRef]], None]


def _announce_nothing(changes: Sequence[TaskChange]) -> None:
    return None


def _send_nothing(deliveries: Sequence[DeliveryRef]) -> None:
    return None


class SqlUnitOfWork:
    def __init__(
        self,
        engine: sa.Engine,
        tenant_id: str,
        sealer: Sealer,
        *,
        autocommit: bool = False,
        announce: Announce = _announce_nothing,
        send_deliveries: SendDeliveries = _send_nothing,
    ) -> None:
        self._engine, self._tenant_id, self._autocommit = engine, tenant_id, autocommit
        self._sealer, self._announce = sealer, announce
        self._send_deliveries = send_deliveries
        self._changes: dict[UUID, TaskChange] = {}
        self._deliveries: list[UUID] = []

    def __enter__(self) -> Self:
        try:
            self._connection = tenancy.scoped(self._engine.connect(), self._tenant_id)
            if self._autocommit:
                self._connection = self._connection.execution_options(isolation_level="AUTOCOMMIT")
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        db, tenant, sealer = self._connection, self._tenant_id, self._sealer
        self.networks = SqlNetworkRepository(db, tenant, sealer)
        self.agents = SqlAgentRepository(db, tenant, sealer)
        self.tasks = SqlTaskRepository(db, tenant, sealer, self._changes, self._deliveries)
        self.webhooks = SqlWebhookRepository(db, tenant, sealer)
        self.steps = SqlStepRepository(db, tenant, sealer)
        self.memory = SqlMemoryRepository(db, tenant, sealer)
        self.lifetimes = SqlLifetimeRepository(db, tenant, sealer)
        self.quotas = SqlQuotaRepository(db, tenant)
        self.idempotency = SqlIdempotencyRepository(db, tenant)
        self.agent_types = SqlAgentTypeRepository(db, tenant, sealer)
        self.tool_calls = SqlToolCallRepository(db, tenant, sealer)
        self.ratings = SqlRatingRepository(db, tenant, sealer)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._changes.clear()  # what was not committed is not announced
        self._deliveries.clear()
        try:
            if self._autocommit:
                tenancy.forget(self._connection)
            elif self._connection.in_transaction():
                self._connection.rollback()
            self._connection.close()
        except UNAVAILABLE as close_error:
            # The connection died with the server; the pool discards it.
            log.warning("uow.close_failed", error=type(close_error).__name__)
        if isinstance(exc, UNAVAILABLE):
            raise unavailable(exc) from exc
        if isinstance(exc, sa.exc.IntegrityError) and _is_foreign_key_violation(exc):
            # What a write refers to was deleted under it (a network or task erased while a
            # step ran): for the caller, that task or network is not found.
            raise NotFound("task or network", "of this write") from exc

    def commit(self) -> None:
        if self._autocommit:
            return  # each statement committed as it ran
        # Services may commit more than once in a block: the next statement begins a new
        # transaction, which sets the tenant again (tenancy.py); none begins if none follows.
        self._connection.commit()
        if self._changes:
            changes = list(self._changes.values())
            self._changes.clear()
            self._announce(changes)
        if self._deliveries:
            made = [DeliveryRef(self._tenant_id, d) for d in self._deliveries]
            self._deliveries.clear()
            self._send_deliveries(made)

    def rollback(self) -> None:
        self._changes.clear()
        self._deliveries.clear()
        if not self._autocommit:
            self._connection.rollback()


class SqlUnitOfWorkFactory:
    def __init__(
        self,
        engine: sa.Engine,
        sealer: Sealer,
        *,
        announce: Announce = _announce_nothing,
        send_deliveries: SendDeliveries = _send_nothing,
    ) -> None:
        self._engine, self._sealer, self._announce = engine, sealer, announce
        self.send_deliveries = send_deliveries
        tenancy.install(engine)

    def __call__(self, tenant_id: str, *, autocommit: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self._engine,
            tenant_id,
            self._sealer,
            autocommit=autocommit,
            announce=self._announce,
            send_deliveries=self.send_deliveries,
        )

    def due_deliveries(self, now: datetime, limit: int) -> list[DeliveryRef]:
        """Pending webhook deliveries of every tenant that are due and not leased: the ones
        whose message was lost, or whose retry is due (the sweeper sends them again)."""
        d = webhook_deliveries.c
        try:
            with tenancy.across_tenants(self._engine).connect() as connection:
                rows = connection.execute(
                    sa.select(d.tenant_id, d.id)
                    .where(
                        d.status == DeliveryStatus.PENDING.value,
                        d.next_attempt_at <= now,
                        sa.or_(d.leased_until.is_(None), d.leased_until < now),
                    )
                    .order_by(d.next_attempt_at)
                    .limit(limit)
                ).all()
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        return [DeliveryRef(tenant, delivery_id) for tenant, delivery_id in rows]

    def forget_idempotency_keys(self, before: datetime, limit: int) -> int:
        """Delete keys past their lifetime, of every tenant, a batch at a time (oldest first,
        by the index on created_at)."""
        k = idempotency_keys.c
        expired = (
            sa.select(k.tenant_id, k.key)
            .where(k.created_at < before)
            .order_by(k.created_at)
            .limit(limit)
        )
        try:
            with tenancy.across_tenants(self._engine).begin() as connection:
                return connection.execute(
                    idempotency_keys.delete().where(sa.tuple_(k.tenant_id, k.key).in_(expired))
                ).rowcount
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def is_reachable(self) -> bool:
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def owner_of(self, task_id: UUID) -> str | None:
        """The tenant a task belongs to, None for no such task: what a worker says of a
        message its tenant's record did not find."""
        try:
            with tenancy.across_tenants(self._engine).connect() as connection:
                return connection.execute(
                    sa.select(tasks.c.tenant_id).where(tasks.c.id == task_id)
                ).scalar()
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def stalled(self, before: datetime, limit: int) -> list[TaskRef]:
        """Unfinished tasks of every tenant whose heartbeat stopped before `before`, and those
        awaiting approval of a plan whose deadline passed before it.

        The one query that crosses tenants: the sweeper serves the whole fleet, and re-drives
        each task through its own tenant's unit of work.
        """
        try:
            with tenancy.across_tenants(self._engine).connect() as connection:
                rows = connection.execute(
                    sa.select(tasks.c.tenant_id, tasks.c.id, tasks.c.priority)
                    .where(
                        sa.or_(
                            sa.and_(
                                tasks.c.status.in_(ACTIVE),
                                tasks.c.status != AWAITING,
                                tasks.c.heartbeat_at < before,
                            ),
                            # A plan awaiting approval has nothing in flight to re-drive: it
                            # is the sweeper's only once its deadline has passed (its expiry
                            # message lost), to time it out.
                            sa.and_(
                                tasks.c.status == AWAITING,
                                tasks.c.deadline_at < before,
                            ),
                        ),
                        sa.not_(tasks.c.held),  # waiting for POST .../process, by request
                    )
                    .order_by(tasks.c.heartbeat_at)
                    .limit(limit)
                ).all()
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        return [TaskRef(tenant, task_id, Priority(priority)) for tenant, task_id, priority in rows]


def _is_foreign_key_violation(exc: sa.exc.IntegrityError) -> bool:
    # Postgres's SQLSTATE 23503; SQLite says so in its message.
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == "23503" or "FOREIGN KEY constraint failed" in str(
        orig
    )


def unavailable(exc: BaseException) -> RecordUnavailable:
    log.warning("record.unavailable", error=str(getattr(exc, "orig", exc))[:300])
    return RecordUnavailable("the record (database) is unavailable; try again shortly")
