"""The shared memory view in Redis: an item per key, indexed by type and by task.

Keys carry the tenant and the network, so a purge is one pattern and isolation is in the name:
    mesh:{tenant}:mem:{network}:item:{id}        the item, as JSON
    mesh:{tenant}:mem:{network}:type:{type}      sorted set of ids, scored by creation time
    mesh:{tenant}:mem:{network}:task:{task}      sorted set of ids a task's steps wrote
    mesh:{tenant}:mem:{network}:built            set once the view holds the whole record

Redis errors leave as MemoryViewUnavailable, so callers can fall back to the record.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import ParamSpec, TypeVar
from uuid import UUID

import redis

from meshcore.domain.errors import MemoryViewUnavailable
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType

P = ParamSpec("P")
T = TypeVar("T")

# Ids are read a page at a time, and items loaded a batch at a time: first as many as the
# query wants (most items pass its filters), then twice as many while the filters reject.
_MAX_PAGE = 1000


def _translated(method: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise MemoryViewUnavailable(f"the memory view is unavailable: {exc}") from exc

    return call


class RedisMemoryStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    @_translated
    def put(self, item: MemoryItem) -> None:
        self.put_many([item])

    @_translated
    def put_many(self, items: Sequence[MemoryItem]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for item in items:
            prefix = _prefix(item.tenant_id, item.network_id)
            score = item.created_at.timestamp()
            pipe.set(f"{prefix}:item:{item.id}", _dump(item))
            pipe.zadd(f"{prefix}:type:{item.type.value}", {str(item.id): score})
            if item.task_id:
                pipe.zadd(f"{prefix}:task:{item.task_id}", {str(item.id): score})
        pipe.execute()

    @_translated
    def is_built(self, tenant_id: str, network_id: UUID) -> bool:
        return bool(self._redis.exists(f"{_prefix(tenant_id, network_id)}:built"))

    @_translated
    def mark_built(self, tenant_id: str, network_id: UUID, ttl_seconds: int) -> None:
        # The mark expires so that a view that missed a write (Redis down at that moment)
        # is rebuilt from the record within ttl_seconds.
        self._redis.set(f"{_prefix(tenant_id, network_id)}:built", 1, ex=ttl_seconds)

    @_translated
    def query(self, tenant_id: str, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        """Newest first, at or above the confidence floor, `limit` items after `offset`."""
        prefix = _prefix(tenant_id, network_id)
        if query.task_id is not None:
            indexes = [f"{prefix}:task:{query.task_id}"]
        else:
            indexes = [f"{prefix}:type:{t.value}" for t in query.types]
        wanted = query.offset + query.limit
        found: list[MemoryItem] = []
        for item in self._newest_first(prefix, indexes, first_page=wanted):
            if item.type in query.types and item.confidence >= query.min_confidence:
                found.append(item)
                if len(found) == wanted:
                    break
        return found[query.offset :]

    def _newest_first(
        self, prefix: str, indexes: list[str], *, first_page: int
    ) -> Iterator[MemoryItem]:
        """The indexes' items newest first, each loaded only when the caller gets that far."""
        ids = self._ids_newest_first(indexes, first_page=first_page)
        batch = max(1, min(first_page, _MAX_PAGE))
        while chunk := list(itertools.islice(ids, batch)):
            yield from self._load(prefix, chunk)  # in order; an item deleted meanwhile is skipped
            batch = min(2 * batch, _MAX_PAGE)

    def _ids_newest_first(self, indexes: list[str], *, first_page: int) -> Iterator[bytes]:
        """Merge the indexes' ids by creation time, reading each a page at a time as needed."""
        pages: dict[int, deque[tuple[float, bytes]]] = {}
        starts = dict.fromkeys(range(len(indexes)), 0)
        sizes = dict.fromkeys(range(len(indexes)), max(1, min(first_page, _MAX_PAGE)))
        more: set[int] = set()  # the indexes whose last page came back full
        heap: list[tuple[float, int]] = []

        def refill(*which: int) -> None:
            pipe = self._redis.pipeline(transaction=False)  # one round trip for every index
            for i in which:
                pipe.zrevrange(indexes[i], starts[i], starts[i] + sizes[i] - 1, withscores=True)
            for i, page in zip(which, pipe.execute(), strict=True):
                more.discard(i)
                if len(page) == sizes[i]:
                    more.add(i)
                starts[i] += sizes[i]
                sizes[i] = min(2 * sizes[i], _MAX_PAGE)
                pages[i] = deque((score, member) for member, score in page)
                if pages[i]:
                    heapq.heappush(heap, (-pages[i][0][0], i))

        refill(*range(len(indexes)))
        while heap:
            _, i = heapq.heappop(heap)
            _, member = pages[i].popleft()
            yield member
            if pages[i]:
                heapq.heappush(heap, (-pages[i][0][0], i))
            elif i in more:
                refill(i)

    @_translated
    def for_subtasks(
        self, tenant_id: str, network_id: UUID, task_id: UUID, keys: Sequence[str]
    ) -> list[MemoryItem]:
        """What the given subtasks of a task wrote, oldest first."""
        if not keys:
            return []
        prefix = _prefix(tenant_id, network_id)
        ids = self._redis.zrange(f"{prefix}:task:{task_id}", 0, -1)
        return [i for i in self._load(prefix, ids) if i.subtask in keys]

    @_translated
    def purge_network(self, tenant_id: str, network_id: UUID) -> None:
        keys = list(self._redis.scan_iter(match=f"{_prefix(tenant_id, network_id)}:*", count=500))
        for start in range(0, len(keys), 500):
            self._redis.unlink(*keys[start : start + 500])

    def is_reachable(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def _load(self, prefix: str, ids: Sequence[bytes | str]) -> list[MemoryItem]:
        if not ids:
            return []
        raw = self._redis.mget([f"{prefix}:item:{_text(i)}" for i in ids])
        return [_load(r) for r in raw if r is not None]


def _prefix(tenant_id: str, network_id: UUID) -> str:
    return f"mesh:{tenant_id}:mem:{network_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dump(item: MemoryItem) -> str:
    return json.dumps(
        {
            "id": str(item.id),
            "tenant_id": item.tenant_id,
            "network_id": str(item.network_id),
            "type": item.type.value,
            "content": item.content,
            "confidence": item.confidence,
            "created_at": item.created_at.isoformat(),
            "metadata": item.metadata,
        }
    )


def _load(raw: bytes | str) -> MemoryItem:
    data = json.loads(raw)
    return MemoryItem(
        id=UUID(data["id"]),
        tenant_id=data["tenant_id"],
        network_id=UUID(data["network_id"]),
        type=MemoryType(data["type"]),
        content=data["content"],
        confidence=data["confidence"],
        created_at=datetime.fromisoformat(data["created_at"]),
        metadata=data["metadata"],
    )
