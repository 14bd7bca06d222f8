"""The shared memory: the record in Postgres, and the fast view of it in Redis.

Writes go to the record first, then to the view. Reads go to the view, which is rebuilt from
the record when it is missing (a Redis that restarted empty) and bypassed when Redis is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import structlog

from meshcore.domain.errors import MemoryViewUnavailable, NotFound
from meshcore.domain.idempotency import Created, IdempotencyKey
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.quotas import DEFAULT_QUOTAS, Quota, Quotas
from meshcore.ports import Clock, MemoryStore, UnitOfWork, UnitOfWorkFactory
from meshcore.services.idempotency import DEFAULT_LIFETIME, earlier_create
from meshcore.services.quotas import reserve
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)

VIEW_TTL_SECONDS = 600
REBUILD_LIMIT = 100_000


class MemoryView:
    """One tenant's reads and writes of shared memory, record first, view when it can."""

    def __init__(self, *, tenant_id: str, uow: UnitOfWorkFactory, store: MemoryStore) -> None:
        self._tenant_id, self._uow, self._store = tenant_id, uow, store

    def remember(self, uow: UnitOfWork, *items: MemoryItem) -> None:
        """Commit items to the record, then publish them to the view."""
        for item in items:
            uow.memory.add(item)
        uow.commit()
        self.publish(*items)

    def publish(self, *items: MemoryItem) -> None:
        metrics.memory_operations.labels("write").inc(len(items))
        for item in items:
            metrics.memory_confidence.labels(str(item.type)).observe(item.confidence)
        try:
            self._store.put_many(items)
            for network_id in {i.network_id for i in items}:
                self._unless_deleted(network_id)
        except MemoryViewUnavailable as exc:
            # Recorded all the same: the view's mark expires and it is rebuilt from the record.
            log.warning("memory.view_stale", items=len(items), error=str(exc))

    def _unless_deleted(self, network_id: UUID) -> None:
        """Purge the view just written if its network was deleted meanwhile.

        The delete purges after its commit and this looks after the write: whichever comes
        last sees the other, so a view of a deleted network never outlives both.
        """
        try:
            with self._uow(self._tenant_id) as uow:
                uow.networks.require(network_id)
        except NotFound:
            self._store.purge_network(self._tenant_id, network_id)
            log.info("memory.view_purged", network_id=str(network_id), reason="network deleted")

    def query(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        metrics.memory_operations.labels("read").inc()
        try:
            self._ensure(network_id)
            return self._store.query(self._tenant_id, network_id, query)
        except MemoryViewUnavailable:
            with self._uow(self._tenant_id) as uow:
                return uow.memory.list(network_id, query)

    def for_subtasks(
        self, network_id: UUID, task_id: UUID, keys: Sequence[str]
    ) -> list[MemoryItem]:
        if not keys:
            return []
        metrics.memory_operations.labels("read").inc()
        try:
            self._ensure(network_id)
            return self._store.for_subtasks(self._tenant_id, network_id, task_id, keys)
        except MemoryViewUnavailable:
            with self._uow(self._tenant_id) as uow:
                found = uow.memory.list(network_id, MemoryQuery(task_id=task_id, limit=1000))
            return sorted((m for m in found if m.subtask in keys), key=lambda m: m.created_at)

    def _ensure(self, network_id: UUID) -> None:
        """Rebuild the view from the record if Redis lost it (or its mark expired)."""
        if self._store.is_built(self._tenant_id, network_id):
            return
        with self._uow(self._tenant_id) as uow:
            items = uow.memory.list(network_id, MemoryQuery(limit=REBUILD_LIMIT))
        self._store.put_many(items)
        self._store.mark_built(self._tenant_id, network_id, VIEW_TTL_SECONDS)
        self._unless_deleted(network_id)
        log.info("memory.view_rebuilt", network_id=str(network_id), items=len(items))


class MemoryService:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        store: MemoryStore,
        clock: Clock,
        quotas: Quotas = DEFAULT_QUOTAS,
        idempotency_lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self._tenant_id, self._uow, self._clock, self._quotas = tenant_id, uow, clock, quotas
        self._view = MemoryView(tenant_id=tenant_id, uow=uow, store=store)
        self._idempotency_lifetime = idempotency_lifetime

    def add(
        self,
        network_id: UUID,
        *,
        type: MemoryType,
        content: str,
        confidence: float,
        metadata: dict[str, object] | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> MemoryItem:
        """Record an item in Postgres, then publish it to the shared view. A retry under the
        same idempotency key answers the item the first call wrote."""
        with self._uow(self._tenant_id) as uow:
            earlier = earlier_create(
                uow,
                idempotency,
                Created.MEMORY,
                now=self._clock.now(),
                lifetime=self._idempotency_lifetime,
            )
            if earlier is not None:
                return uow.memory.get(network_id, earlier)
            uow.networks.require(network_id)
            item = MemoryItem.create(
                tenant_id=self._tenant_id,
                network_id=network_id,
                type=type,
                content=content,
                confidence=confidence,
                now=self._clock.now(),
                metadata=metadata,
            )
            # Clients' writes only: an agent's findings count, but a step is never refused.
            reserve(uow, self._quotas, Quota.MEMORY_ITEMS, network_id)
            if idempotency is not None:
                uow.idempotency.made(idempotency.key, item.id)
            self._view.remember(uow, item)
        log.info("memory.written", network_id=str(network_id), item_id=str(item.id), type=type)
        return item

    def query(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        """Items newest first, from the view (or the record while Redis is down)."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
        return self._view.query(network_id, query)

    def count(self, network_id: UUID, query: MemoryQuery) -> int:
        """How many items match, from the record (the view keeps no counts by filter)."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
            return uow.memory.count(network_id, replace(query, offset=0))
