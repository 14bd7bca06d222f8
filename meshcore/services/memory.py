"""The shared memory as clients see it: add items, query them."""

from __future__ import annotations

from uuid import UUID

import structlog

from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.ports import Clock, MemoryStore, UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)


class MemoryService:
    def __init__(
        self, *, tenant_id: str, uow: UnitOfWorkFactory, store: MemoryStore, clock: Clock
    ) -> None:
        self._tenant_id, self._uow, self._store, self._clock = tenant_id, uow, store, clock

    def add(
        self,
        network_id: UUID,
        *,
        type: MemoryType,
        content: str,
        confidence: float,
        metadata: dict[str, object] | None = None,
    ) -> MemoryItem:
        """Record an item in Postgres, then publish it to the shared view."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.get(network_id)
            item = MemoryItem.create(
                tenant_id=self._tenant_id,
                network_id=network_id,
                type=type,
                content=content,
                confidence=confidence,
                now=self._clock.now(),
                metadata=metadata,
            )
            remember(uow, self._store, item)
        log.info("memory.written", network_id=str(network_id), item_id=str(item.id), type=type)
        return item

    def query(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        """Items from the shared view, newest first."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.get(network_id)
        return self._store.query(self._tenant_id, network_id, query)

    def count(self, network_id: UUID, query: MemoryQuery) -> int:
        """How many items match, from the record (the view keeps no counts by filter)."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.get(network_id)
            return uow.memory.count(network_id, query)


def remember(uow: UnitOfWork, store: MemoryStore, *items: MemoryItem) -> None:
    """Commit items to the record and then to the shared view (write-through, record first)."""
    for item in items:
        uow.memory.add(item)
    uow.commit()
    for item in items:
        store.put(item)
