"""Counting what a tenant holds against its quotas, under a lock per quota."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from meshcore.adapters.sql.tables import agents, memory_items, networks, tasks
from meshcore.domain.quotas import Quota
from meshcore.domain.task import TaskStatus

IN_FLIGHT = [s.value for s in TaskStatus if not s.is_terminal]
# hashtextextended: a 64-bit lock id from the text, so tenants' locks rarely share one (and
# two that do only take turns).
ADVISORY_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")


class SqlQuotaRepository:
    def __init__(self, connection: sa.Connection, tenant_id: str) -> None:
        self._db, self._tenant_id = connection, tenant_id

    def hold(self, quota: Quota, scope: UUID | None = None) -> None:
        # Postgres: a transaction-scoped advisory lock, released by the commit or rollback,
        # so no row (a network's, which its steps update) is held for it. SQLite needs none:
        # every write transaction begins IMMEDIATE there, so writers already take turns.
        if self._db.dialect.name != "postgresql":
            return
        name = f"mesh-quota:{self._tenant_id}:{quota.value}:{scope or ''}"
        self._db.execute(ADVISORY_LOCK, {"name": name})

    def used(self, quota: Quota, scope: UUID | None = None, *, up_to: int) -> int:
        table, where = self._counted(quota, scope)
        # Bounded: counting past the limit would only say what the limit already says.
        found = sa.select(sa.literal(1)).select_from(table).where(*where).limit(up_to).subquery()
        return self._db.execute(sa.select(sa.func.count()).select_from(found)).scalar_one()

    def _counted(
        self, quota: Quota, scope: UUID | None
    ) -> tuple[sa.Table, list[sa.ColumnElement[bool]]]:
        if quota is Quota.NETWORKS:
            return networks, [networks.c.tenant_id == self._tenant_id]
        if quota is Quota.TASKS_IN_FLIGHT:
            return tasks, [tasks.c.tenant_id == self._tenant_id, tasks.c.status.in_(IN_FLIGHT)]
        table = agents if quota is Quota.AGENTS else memory_items
        return table, [table.c.tenant_id == self._tenant_id, table.c.network_id == scope]
