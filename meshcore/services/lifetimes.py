"""Memory's lifetimes and bound as writers, clients and the sweeper meet them.

domain/lifetimes.py says what lasts and what goes first; here is when it happens:
- a write stamps its item with the expiry its network's policy gives its type, and counts
  the item against the network's bound; past the bound, the least valuable items go in the
  same transaction (never one this transaction wrote), down to 99 % of the bound;
- a client's write first makes room, in a transaction of its own, so that a network at its
  bound takes the item in place of the least valuable one rather than refusing it with the
  client quota (when the bound is at or below the quota, as by default);
- the sweep deletes, across tenants a batch at a time, what expired and the context items of
  tasks that ended;
- a promotion makes an item last.
Every removal leaves the record first and the view (Redis) after the commit, and is counted
in mesh_memory_evictions_total by its reason.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

import structlog

from meshcore.domain.errors import MemoryViewUnavailable
from meshcore.domain.lifetimes import Eviction, MemoryPolicy, excess, least_valuable
from meshcore.domain.memory import MemoryItem
from meshcore.ports import (
    Clock,
    Forgotten,
    MemoryExpiry,
    MemoryStore,
    UnitOfWork,
    UnitOfWorkFactory,
)
from meshcore.services.memory_writes import Written, shown
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)

# MESH_MEMORY_BOUND's default: the items one network keeps.
DEFAULT_BOUND = 100_000
# Items one sweep deletes per reason; what is left goes at the next sweep.
SWEEP_BATCH = 1000


class MemoryBound:
    """One tenant's writes of memory, held to their networks' lifetimes and bounds."""

    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        store: MemoryStore,
        clock: Clock,
        bound: int = DEFAULT_BOUND,
    ) -> None:
        self._tenant_id, self._uow, self._store, self._clock = tenant_id, uow, store, clock
        self._bound = bound
        # The items each open unit of work wrote: eviction never takes one of its own.
        self._written: weakref.WeakKeyDictionary[UnitOfWork, set[UUID]] = (
            weakref.WeakKeyDictionary()
        )

    def policy(self, uow: UnitOfWork, network_id: UUID) -> MemoryPolicy:
        return uow.lifetimes.policy(network_id) or MemoryPolicy()

    def admitted(self, uow: UnitOfWork, written: Written, policy: MemoryPolicy) -> Written:
        """Count a new item against its network's bound and evict what is past it, in the
        writer's unit of work: the count is held from here to the commit, so writers of one
        network take turns only at the end of their transactions."""
        if not written.is_new:
            return written
        network_id = written.item.network_id
        mine = self._written.setdefault(uow, set())
        mine.add(written.item.id)
        held = uow.lifetimes.count(network_id, adding=1)
        evicted = self._evict(uow, network_id, held, policy.bound(self._bound), keep=mine)
        return replace(written, evicted=tuple(evicted)) if evicted else written

    def make_room(self, network_id: UUID, *, quota: int) -> None:
        """Before a client's write that the client `quota` would refuse: evict as if the
        item were in, so that a network at its bound (at or below the quota) takes the item
        in place of its least valuable one. Below the quota nothing happens here: the write
        itself evicts past the bound. A transaction of its own, committed before the write
        begins, so that the write takes its locks in the usual order."""
        with self._uow(self._tenant_id) as uow:
            policy = uow.lifetimes.policy(network_id)
            if policy is None:
                return  # the write answers that the network is not found
            held = uow.lifetimes.count(network_id)
            evicted = []
            if held + 1 > quota:
                evicted = self._evict(uow, network_id, held + 1, policy.bound(self._bound), set())
            uow.commit()  # a count made just now is kept, for the writes to come
        self.forget(network_id, evicted)

    def forget(self, network_id: UUID, evicted: Sequence[UUID]) -> None:
        """After the commit that evicted them: take the items out of the view, and count them."""
        if not evicted:
            return
        metrics.memory_evictions.labels(Eviction.BOUND.value).inc(len(evicted))
        log.info("memory.evicted", network_id=str(network_id), items=len(evicted), reason="bound")
        forget_in_view(self._store, [Forgotten(self._tenant_id, network_id, i) for i in evicted])

    def _evict(
        self, uow: UnitOfWork, network_id: UUID, count: int, bound: int, keep: set[UUID]
    ) -> list[UUID]:
        over = excess(count, bound)
        if not over:
            return []
        holdings = uow.lifetimes.holdings(network_id)
        # Spares: an item another transaction holds is in use, and is passed over.
        order = least_valuable(
            (h for h in holdings if h.id not in keep), 2 * over + 8, self._clock.now()
        )
        gone: list[UUID] = []
        while order and len(gone) < over:
            wanted, order = order[: over - len(gone)], order[over - len(gone) :]
            gone += uow.lifetimes.evict(network_id, wanted)
        # Counted afresh while the count is held: whatever drifted is set right here.
        uow.lifetimes.set_count(network_id, len(holdings) - len(gone))
        return gone


class MemoryPromotion:
    """Promoting items to last: POST /networks/{id}/memory/{item_id}/promote."""

    def __init__(
        self, *, tenant_id: str, uow: UnitOfWorkFactory, store: MemoryStore, clock: Clock
    ) -> None:
        self._tenant_id, self._uow, self._store, self._clock = tenant_id, uow, store, clock

    def promote(self, network_id: UUID, item_id: UUID) -> MemoryItem:
        """Make the item last: its expiry cleared and, a context item, kept past its task.
        Promoting it again changes nothing. NotFound for a network or item the tenant lacks."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
            item = uow.lifetimes.promote(network_id, item_id, at=self._clock.now())
            item = shown(uow, [item])[0]
            uow.commit()
        try:
            # The view's copy takes the new lifetime; putting an item again leaves its index
            # entries as they were.
            self._store.put_many([replace(item, contradicts=())])
        except MemoryViewUnavailable as exc:
            log.warning("memory.view_stale", items=1, error=str(exc))
        log.info(
            "memory.promoted",
            network_id=str(network_id),
            item_id=str(item_id),
            type=item.type.value,
            task_id=item.task_id,
        )
        return item


class MemorySweep:
    """The sweeper's share of memory: what expired, and the context items of ended tasks."""

    def __init__(self, *, expiry: MemoryExpiry, store: MemoryStore, batch: int = SWEEP_BATCH):
        self._expiry, self._store, self._batch = expiry, store, batch

    def sweep(self, now: datetime) -> dict[str, int]:
        """Delete a batch of each from the record, then from the view; answers how many went
        for each reason that took any."""
        done: dict[str, int] = {}
        for reason in (Eviction.EXPIRED, Eviction.TASK_ENDED):
            if reason is Eviction.EXPIRED:
                gone = self._expiry.forget_expired(now, self._batch)
            else:
                gone = self._expiry.forget_of_ended_tasks(self._batch)
            if not gone:
                continue
            metrics.memory_evictions.labels(reason.value).inc(len(gone))
            forget_in_view(self._store, gone)
            done[f"memory_{reason.value}"] = len(gone)
            log.info("memory.swept", reason=reason.value, items=len(gone))
        return done


def forget_in_view(store: MemoryStore, gone: Sequence[Forgotten]) -> None:
    """Take items the record no longer holds out of the view, network by network."""
    per_network: dict[tuple[str, UUID], list[UUID]] = defaultdict(list)
    for f in gone:
        per_network[(f.tenant_id, f.network_id)].append(f.item_id)
    for (tenant_id, network_id), ids in per_network.items():
        try:
            store.forget(tenant_id, network_id, ids)
        except MemoryViewUnavailable as exc:
            # Gone from the record all the same; the record is what the API counts and a
            # rebuilt view reads.
            log.warning(
                "memory.view_stale", network_id=str(network_id), items=len(ids), error=str(exc)
            )
