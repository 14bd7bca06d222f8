"""The shared memory as clients use it: writes under quotas and idempotency keys, reads by
filter or by relevance, and the item's history and promotion. Agents use the view underneath
(memory_view.py): record first, then Redis.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import structlog

from meshcore.domain.idempotency import Created, IdempotencyKey
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.quotas import DEFAULT_QUOTAS, Quota, Quotas
from meshcore.domain.relevance import Ranked
from meshcore.ports import Clock, MemoryStore, UnitOfWorkFactory
from meshcore.services.idempotency import DEFAULT_LIFETIME, earlier_create
from meshcore.services.lifetimes import DEFAULT_BOUND
from meshcore.services.memory_view import MemoryView
from meshcore.services.memory_writes import shown
from meshcore.services.quotas import reserve
from meshcore.services.retrieval import Retrieval, for_client

log = structlog.get_logger(__name__)


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
        memory_bound: int = DEFAULT_BOUND,
    ) -> None:
        self._tenant_id, self._uow, self._clock, self._quotas = tenant_id, uow, clock, quotas
        self._view = MemoryView(
            tenant_id=tenant_id, uow=uow, store=store, clock=clock, bound=memory_bound
        )
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
        """Record an item in Postgres, then publish it to the shared view; answers it, with
        the decisions it contradicts. A fact or decision that restates an item of the network
        is merged into it instead (memory_writes.py): the answer is that item, its confidence
        raised. A retry under the same idempotency key answers the item the first call
        wrote (or merged into), and merges nothing again. A network at its bound takes the
        item in place of its least valuable one (lifetimes.py)."""
        # Made first: input it refuses changes nothing, not even to make room.
        item = MemoryItem.create(
            tenant_id=self._tenant_id,
            network_id=network_id,
            type=type,
            content=content,
            confidence=confidence,
            now=self._clock.now(),
            metadata=metadata,
        )
        self._view.make_room(network_id, quota=self._quotas.limit(Quota.MEMORY_ITEMS))
        with self._uow(self._tenant_id) as uow:
            earlier = earlier_create(
                uow,
                idempotency,
                Created.MEMORY,
                now=self._clock.now(),
                lifetime=self._idempotency_lifetime,
            )
            if earlier is not None:
                return shown(uow, [uow.memory.get(network_id, earlier)])[0]
            uow.networks.require(network_id)
            written = self._view.write(
                uow,
                item,
                by="a client",
                # Clients' writes only: an agent's findings count, but a step is never refused.
                reserve=lambda: reserve(uow, self._quotas, Quota.MEMORY_ITEMS, network_id),
            )
            if idempotency is not None:
                uow.idempotency.made(idempotency.key, written.item.id)
            uow.commit()
        self._view.published(written)
        if written.is_new:
            log.info("memory.written", network_id=str(network_id), item_id=str(item.id), type=type)
        return written.item

    def query(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        """Items newest first, from the view (or the record while Redis is down)."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
        found = self._view.query(network_id, query)
        if not found:
            return found
        with self._uow(self._tenant_id) as uow:
            return shown(uow, found)

    def ranked(
        self,
        network_id: UUID,
        query: MemoryQuery,
        *,
        text: str | None,
        agent: str | None,
        types_given: bool,
    ) -> tuple[list[Ranked], int]:
        """The page `query` asks for of the items ranked for a text and an agent type, best
        first, and how many were ranked (retrieval.for_client). Only the page is opened."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
        retrieval = Retrieval(self._view, self._clock)
        found = for_client(
            retrieval, self._uow, self._tenant_id, network_id, query,
            text=text, agent=agent, types_given=types_given,
        )  # fmt: skip
        page = list(retrieval.opened(network_id, found[query.offset : query.offset + query.limit]))
        if page:
            with self._uow(self._tenant_id) as uow:
                items = shown(uow, [r.item for r in page])
            page = [replace(r, item=i) for r, i in zip(page, items, strict=True)]
        return page, len(found)

    def count(self, network_id: UUID, query: MemoryQuery) -> int:
        """How many items match, from the record (the view keeps no counts by filter)."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
            return uow.memory.count(network_id, replace(query, offset=0))
