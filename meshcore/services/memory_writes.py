"""Writing one memory item to the record: a restatement merges, a contradiction is linked.

Within the caller's unit of work, which commits it with what else it holds (a step, an
idempotency key), so that a write that did not commit merged and linked nothing:
- a fact or decision that restates an item of its network (restatement.py) adds no row: the
  item that holds it takes a MERGE verdict as strong as the restater's confidence, kept in
  its history ("restated by the research agent in task ..."), and is the write's answer. A
  step's output that merged is noted with the item that holds it, so the subtasks that
  depend on the step still read it (MemoryView.for_subtasks). Where its type has a lifetime,
  the item's expiry is put off as if it had been written now;
- a new decision is linked to the decisions of its network it contradicts (contradiction.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from uuid import UUID

import structlog

from meshcore.domain.confidence import ConfidenceChange, ConfidenceSource
from meshcore.domain.contradiction import contradicts, may_contradict
from meshcore.domain.memory import MemoryItem
from meshcore.domain.restatement import merge_reason, merge_signal, merges, restater
from meshcore.ports import UnitOfWork
from meshcore.services.learning import MemoryLearning

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Written:
    """What a write left in the record: the item that holds what was written (the new one,
    or the one it restated, with its confidence raised), and the merge's changes."""

    item: MemoryItem
    is_new: bool
    changes: tuple[ConfidenceChange, ...] = ()
    # The items the write evicted to keep its network within its bound (services/lifetimes.py),
    # to take out of the view once it has committed.
    evicted: tuple[UUID, ...] = ()


def write(
    uow: UnitOfWork,
    item: MemoryItem,
    learning: MemoryLearning,
    *,
    by: str | None = None,
    reserve: Callable[[], None] | None = None,
) -> Written:
    """Record `item`, or merge it into the item it restates. `by` names the writer in the
    history (else restatement.restater); `reserve` is called before a new row goes in (a
    client's quota), never for a restatement, which adds none."""
    holder = uow.memory.restated(item) if merges(item.type) else None
    if holder is None:
        if reserve is not None:
            reserve()
        holder = uow.memory.admit(item)
    if holder is not None:
        return _merged(uow, item, holder, learning, by or restater(item))
    linked = _link(uow, item) if may_contradict(item) else ()
    return Written(replace(item, contradicts=linked), is_new=True)


def shown(uow: UnitOfWork, items: list[MemoryItem]) -> list[MemoryItem]:
    """The items with the contradictions the record links them to, as readers see them."""
    links = uow.memory.contradictions([i.id for i in items]) if items else {}
    return [replace(i, contradicts=links[i.id]) if i.id in links else i for i in items]


def _merged(
    uow: UnitOfWork, item: MemoryItem, holder: UUID, learning: MemoryLearning, by: str
) -> Written:
    changes = learning.record(
        uow,
        item.network_id,
        [holder],
        merge_signal(item),
        source=ConfidenceSource.MERGE,
        reason=merge_reason(by, item.task_id),
        task_id=_uuid(item.task_id),
    )
    uow.memory.note_restatement(item, holder)
    if item.expires_at is not None:  # its type has a lifetime: said again, it is live again
        uow.lifetimes.renew(item.network_id, holder, until=item.expires_at)
    held = shown(uow, [uow.memory.get(item.network_id, holder)])[0]
    log.info(
        "memory.merged",
        network_id=str(item.network_id),
        item_id=str(holder),
        type=item.type.value,
        task_id=item.task_id,
        confidence=held.confidence,
    )
    return Written(held, is_new=False, changes=tuple(changes))


def _link(uow: UnitOfWork, item: MemoryItem) -> tuple[UUID, ...]:
    candidates = uow.memory.same_subject(item)
    opposed = tuple(c.id for c in candidates if contradicts(item.content, c.content))
    if opposed:
        uow.memory.link_contradictions(item.id, opposed, at=item.created_at)
        log.info(
            "memory.contradiction",
            network_id=str(item.network_id),
            item_id=str(item.id),
            contradicts=[str(i) for i in opposed],
        )
    return opposed


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None
