"""How long shared memory lasts, and what a full network forgets first.

- A type with a time to live in the network's `config.memory.ttl_seconds` expires that long
  after an item of it was written; by default no type has one, so facts and decisions last.
- A context item written for a task (its metadata names the task) lasts as long as the task:
  once the task has ended it goes, unless it was promoted.
- A promoted item lasts: it has no expiry, and a context item outlives its task.
- A network holds at most its bound of items (`config.memory.max_items`, else the setting
  MESH_MEMORY_BOUND); a write that takes it past the bound evicts the least valuable first.

An item's value to keep is confidence x (1 + ln(1 + uses)) x 2^(-age / 30 days): what the
network trusts, what its verdicts keep coming back to, and what is recent. Uses are the
item's confidence changes (each is a verdict on work that read it, a client's rating of
such work, or a restatement of it), which the record keeps anyway.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from meshcore.domain.errors import InvalidInput
from meshcore.domain.memory import MemoryItem, MemoryType

MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 365 * 86_400
# What a network's own bound may be at most; the deployment's MESH_MEMORY_BOUND caps it too.
MAX_BOUND = 10_000_000
# Slower than retrieval's week (relevance.py): ranking favours what is fresh for a prompt,
# eviction only needs age to break ties between items alike in confidence and use.
VALUE_HALF_LIFE_SECONDS = 30 * 86_400.0


class Eviction(enum.StrEnum):
    """Why memory let an item go: the label of mesh_memory_evictions_total."""

    EXPIRED = "expired"  # its type's time to live ended
    TASK_ENDED = "task_ended"  # a context item whose task ended, not promoted
    BOUND = "bound"  # its network was past its bound, and it was worth least


@dataclass(frozen=True)
class MemoryPolicy:
    """A network's memory lifetimes: a time to live per type, and the bound of its memory."""

    # Not hashed: a frozen config that holds a dict still compares by value.
    ttl_seconds: Mapping[MemoryType, int] = field(default_factory=dict, hash=False)
    max_items: int | None = None  # None: the deployment's bound (MESH_MEMORY_BOUND)

    def __post_init__(self) -> None:
        self.check()

    def check(self, prefix: str = "config.memory") -> None:
        """InvalidInput naming the field (`config.memory.ttl_seconds.fact`) that is out of range."""
        for kind, seconds in self.ttl_seconds.items():
            name = kind.value if isinstance(kind, MemoryType) else str(kind)
            where = f"{prefix}.ttl_seconds.{name}"
            if not isinstance(kind, MemoryType):
                raise InvalidInput(where, f"is no memory type: one of {_types()}")
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                raise InvalidInput(where, "must be a whole number of seconds")
            if not MIN_TTL_SECONDS <= seconds <= MAX_TTL_SECONDS:
                raise InvalidInput(
                    where, f"must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} (365 days)"
                )
        if self.max_items is not None and not 1 <= self.max_items <= MAX_BOUND:
            raise InvalidInput(f"{prefix}.max_items", f"must be between 1 and {MAX_BOUND}")

    def ttl(self, kind: MemoryType) -> timedelta | None:
        seconds = self.ttl_seconds.get(kind)
        return timedelta(seconds=seconds) if seconds is not None else None

    def stamped(self, item: MemoryItem) -> MemoryItem:
        """The item with the expiry its type's time to live gives it (none without one)."""
        ttl = self.ttl(item.type)
        if ttl is None or item.promoted_at is not None:
            return item
        return replace(item, expires_at=item.created_at + ttl)

    def bound(self, default: int) -> int:
        """The items the network keeps: its own bound, never above the deployment's."""
        return default if self.max_items is None else min(self.max_items, default)


def promoted(item: MemoryItem, now: datetime) -> MemoryItem:
    """The item made to last: no expiry, and (a context item) no end with its task."""
    return replace(item, expires_at=None, promoted_at=item.promoted_at or now)


def renewed(expires_at: datetime | None, until: datetime) -> datetime | None:
    """An expiry put off by a restatement that would last until `until`: what is said again
    is live again. It is never brought forward, and what lasts still lasts."""
    return None if expires_at is None else max(expires_at, until)


def ends_with_its_task(item: MemoryItem) -> bool:
    """Whether the item goes once its task has ended: an unpromoted context item of a task."""
    return item.type is MemoryType.CONTEXT and item.task_id is not None and item.promoted_at is None


def excess(count: int, bound: int) -> int:
    """How many items a network holding `count` evicts: none within its bound; past it, down
    to 99 % of it, so the scan that chooses them runs once per 1 % of the bound's writes and
    not on every write. A bound under 100 keeps no slack: it evicts down to the bound."""
    if count <= bound:
        return 0
    return count - (bound - bound // 100)


class Valued(Protocol):
    @property
    def confidence(self) -> float: ...
    @property
    def created_at(self) -> datetime: ...


def value(item: Valued, uses: int, now: datetime) -> float:
    """What keeping the item is worth: confidence x (1 + ln(1 + uses)) x 2^(-age / 30 days)."""
    age = max(0.0, (now - item.created_at).total_seconds())
    decay = 0.5 ** (age / VALUE_HALF_LIFE_SECONDS)
    return item.confidence * (1.0 + math.log1p(max(0, uses))) * decay


@dataclass(frozen=True)
class Holding:
    """What eviction weighs of an item: no content, which stays sealed in the record."""

    id: UUID
    confidence: float
    created_at: datetime
    uses: int = 0


def least_valuable(holdings: Iterable[Holding], count: int, now: datetime) -> list[UUID]:
    """The `count` items worth least, least first; of equal worth the older goes first."""
    if count <= 0:
        return []
    chosen = heapq.nsmallest(
        count, holdings, key=lambda h: (value(h, h.uses, now), h.created_at, str(h.id))
    )
    return [h.id for h in chosen]


def _types() -> str:
    return ", ".join(t.value for t in MemoryType)
