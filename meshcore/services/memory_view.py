"""The agents' view of shared memory: the record in Postgres first, then the fast view of it in
Redis, which is rebuilt from the record when it is missing (a Redis that restarted empty) and
bypassed when Redis is down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from uuid import UUID

import structlog

from meshcore.domain import relevance
from meshcore.domain.clock import SystemClock
from meshcore.domain.errors import MemoryViewUnavailable, NotFound
from meshcore.domain.memory import MemoryItem, MemoryQuery
from meshcore.domain.relevance import Candidate
from meshcore.ports import Clock, MemoryStore, UnitOfWork, UnitOfWorkFactory
from meshcore.services.learning import MemoryLearning
from meshcore.services.lifetimes import DEFAULT_BOUND, MemoryBound
from meshcore.services.memory_writes import Written, write
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)

VIEW_TTL_SECONDS = 600
REBUILD_LIMIT = 100_000
# Longer than a rebuild of REBUILD_LIMIT items takes; a rebuilder that died frees it then.
REBUILD_LEASE_SECONDS = 60
# What a search scores without the index (Redis down, or a task's items): the newest items.
SCAN_LIMIT = 1000


class MemoryView:
    """One tenant's reads and writes of shared memory, record first, view when it can."""

    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        store: MemoryStore,
        clock: Clock | None = None,
        bound: int = DEFAULT_BOUND,
    ) -> None:
        self._tenant_id, self._uow, self._store = tenant_id, uow, store
        # A restatement is a verdict on the item it restates (memory_writes.py).
        self._learning = MemoryLearning(tenant_id, uow, store, clock or SystemClock())
        # Each write's lifetime and its network's bound (lifetimes.py).
        self._lifetimes = MemoryBound(
            tenant_id=tenant_id, uow=uow, store=store, clock=clock or SystemClock(), bound=bound
        )

    def remember(self, uow: UnitOfWork, *items: MemoryItem) -> list[Written]:
        """Commit items to the record (each merged into the item it restates, if any), then
        publish them to the view."""
        written = [self.write(uow, item) for item in items]
        uow.commit()
        self.published(*written)
        return written

    def write(
        self,
        uow: UnitOfWork,
        item: MemoryItem,
        *,
        by: str | None = None,
        reserve: Callable[[], None] | None = None,
    ) -> Written:
        """Record an item in the caller's unit of work, or merge it into the item it
        restates (memory_writes.write); the caller commits, then calls `published`. The
        item expires as its network's policy says, and counts against the network's bound."""
        policy = self._lifetimes.policy(uow, item.network_id)
        written = write(uow, policy.stamped(item), self._learning, by=by, reserve=reserve)
        return self._lifetimes.admitted(uow, written, policy)

    def make_room(self, network_id: UUID, *, quota: int) -> None:
        """Before a client's write, in a transaction of its own: if the client `quota` would
        refuse it, evict as the bound allows, so that a network at its bound takes the item
        in place of its least valuable one."""
        self._lifetimes.make_room(network_id, quota=quota)

    def published(self, *written: Written) -> None:
        """Tell the view what committed writes did: new items go in, merged ones take their
        new confidence."""
        new = [w.item for w in written if w.is_new]
        if new:
            self.publish(*new)
        renewed = [w.item for w in written if not w.is_new and w.item.expires_at is not None]
        if renewed:
            # The copies take their put-off expiry; putting an item again leaves its index
            # entries as they were. Before the confidences, whose versions then apply.
            self._put_again(renewed)
        for w in written:
            if w.changes:
                self._learning.tell_view(w.item.network_id, w.changes)
            self._lifetimes.forget(w.item.network_id, w.evicted)

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

    def _put_again(self, items: list[MemoryItem]) -> None:
        try:
            self._store.put_many([replace(i, contradicts=()) for i in items])
        except MemoryViewUnavailable as exc:
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

    def search(
        self, network_id: UUID, terms: Mapping[str, float], query: MemoryQuery, *, pool: int
    ) -> list[Candidate]:
        """The items holding any of the terms with their BM25 scores, best first, at most
        `pool` (MemoryStore.search). A task's items, and any while Redis is down, are scored
        here instead: the newest SCAN_LIMIT that pass the query's filters."""
        if not terms:
            return []
        if query.task_id is None:
            metrics.memory_operations.labels("read").inc()
            try:
                self._ensure(network_id)
                return self._store.search(self._tenant_id, network_id, terms, query, pool=pool)
            except MemoryViewUnavailable:
                pass
        scanned = self.query(network_id, replace(query, limit=SCAN_LIMIT, offset=0))
        scores = relevance.bm25(terms, [relevance.terms(m.content) for m in scanned])
        found = [Candidate.of(m, s) for m, s in zip(scanned, scores, strict=True) if s > 0]
        return sorted(found, key=lambda c: c.relevance, reverse=True)[:pool]

    def load(self, network_id: UUID, item_ids: Sequence[UUID]) -> list[MemoryItem]:
        """The items, in the order asked, from the view (or the record while Redis is down)."""
        try:
            return self._store.get_many(self._tenant_id, network_id, item_ids)
        except MemoryViewUnavailable:
            with self._uow(self._tenant_id) as uow:
                return [m for i in item_ids if (m := _found(uow, network_id, i)) is not None]

    def for_subtasks(
        self, network_id: UUID, task_id: UUID, keys: Sequence[str]
    ) -> list[MemoryItem]:
        if not keys:
            return []
        metrics.memory_operations.labels("read").inc()
        try:
            self._ensure(network_id)
            own = self._store.for_subtasks(self._tenant_id, network_id, task_id, keys)
        except MemoryViewUnavailable:
            with self._uow(self._tenant_id) as uow:
                found = uow.memory.list(network_id, MemoryQuery(task_id=task_id, limit=1000))
            own = sorted((m for m in found if m.subtask in keys), key=lambda m: m.created_at)
        # An output that restated an item already there is held by that item, which the
        # task's own items do not include: the record says which (memory_writes.py).
        with self._uow(self._tenant_id) as uow:
            restated = uow.memory.restatements(network_id, task_id, keys)
        return [*own, *restated]

    def _ensure(self, network_id: UUID) -> None:
        """Rebuild the view from the record if Redis lost it (or its mark expired)."""
        if self._store.is_built(self._tenant_id, network_id):
            return
        if not self._store.claim_rebuild(self._tenant_id, network_id, REBUILD_LEASE_SECONDS):
            # Another reader rebuilds it: this one reads the record meanwhile, rather than all
            # the steps that found it missing each reading and opening every item at once.
            raise MemoryViewUnavailable("the memory view is being rebuilt")
        try:
            self._rebuild(network_id)
        finally:
            self._store.release_rebuild(self._tenant_id, network_id)

    def _rebuild(self, network_id: UUID) -> None:
        with self._uow(self._tenant_id) as uow:
            items = uow.memory.list(network_id, MemoryQuery(limit=REBUILD_LIMIT))
        # Oldest first, as they were written: the term index weighs each item against the
        # average length when it went in, so the same order gives the same ranking again.
        self._store.put_many(items[::-1])
        # And drop what the record no longer holds: an item deleted (expired, evicted) while
        # Redis was down would otherwise outlive every rebuild.
        gone = self._store.held(self._tenant_id, network_id) - {i.id for i in items}
        if gone and len(items) < REBUILD_LIMIT:
            self._store.forget(self._tenant_id, network_id, sorted(gone))
        self._store.mark_built(self._tenant_id, network_id, VIEW_TTL_SECONDS)
        self._unless_deleted(network_id)
        log.info("memory.view_rebuilt", network_id=str(network_id), items=len(items))


def _found(uow: UnitOfWork, network_id: UUID, item_id: UUID) -> MemoryItem | None:
    try:
        return uow.memory.get(network_id, item_id)
    except NotFound:
        return None
