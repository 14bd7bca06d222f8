"""The shared memory view in Redis: an item per key, indexed by type and by task.

Keys carry the tenant and the network, so a purge is one pattern and isolation is in the name:
    mesh:{tenant}:mem:{network}:item:{id}        the item, as JSON, content and metadata sealed
    mesh:{tenant}:mem:{network}:type:{type}      sorted set of ids, scored by creation time
    mesh:{tenant}:mem:{network}:task:{task}      sorted set of ids a task's steps wrote
    mesh:{tenant}:mem:{network}:built            set once the view holds the whole record
    mesh:{tenant}:mem:{network}:term:... doc:... stats   the term index (redis_terms.py)

An item and its index entries (type, task, terms) are written by one Lua script, so a reader
never sees one without the other.

An item's confidence changes after it is written (what memory learns): the item's JSON then
also carries `confidence_at`, the change's time in microseconds, so that of two updates that
reach Redis out of order the later change wins. No index is keyed by confidence, so the update
is of the item's key alone, compared and swapped: a reader sees the item once, old or new.

Redis errors leave as MemoryViewUnavailable, so callers can fall back to the record; so does
an item sealed under a data key since dropped (a view that missed a rotation), until the view
is rebuilt from the record.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar
from uuid import UUID

import redis

from meshcore.adapters.redis_terms import TermIndex
from meshcore.adapters.sealing import DataKeyError, Sealer
from meshcore.domain.errors import MemoryViewUnavailable
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.relevance import Candidate

P = ParamSpec("P")
T = TypeVar("T")

# Ids are read a page at a time, and items loaded a batch at a time: first as many as the
# query wants (most items pass its filters), then twice as many while the filters reject.
_MAX_PAGE = 1000
_ITEMS = "mesh:*:mem:*:item:*"
_STATS = "mesh:*:mem:*:stats"
# Replaces an item only if it is still what was read: a rotation racing a write keeps the write.
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2]) end
"""
# Each lost swap means another update landed, so a writer loses at most once per concurrent
# writer; past this many the view is left to be rebuilt from the record instead.
_SWAP_TRIES = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Items written per round trip while a view is built.
_PUT_BATCH = 500
# What the built mark holds: the view's layout. A view built before the term index (mark
# "1") is built again, so its items get their postings.
_LAYOUT = b"2"


def _translated(method: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except (redis.RedisError, DataKeyError) as exc:
            raise MemoryViewUnavailable(f"the memory view is unavailable: {exc}") from exc

    return call


class RedisMemoryStore:
    def __init__(self, client: redis.Redis, sealer: Sealer) -> None:
        self._redis, self._sealer = client, sealer
        self._swap = client.register_script(_SWAP)
        self._index = TermIndex(client, sealer.term_key)

    @_translated
    def put(self, item: MemoryItem) -> None:
        self.put_many([item])

    @_translated
    def put_many(self, items: Sequence[MemoryItem]) -> None:
        for start in range(0, len(items), _PUT_BATCH):
            pipe = self._redis.pipeline(transaction=False)
            for item in items[start : start + _PUT_BATCH]:
                prefix = _prefix(item.tenant_id, item.network_id)
                self._index.put(pipe, prefix, item, _dump(item, self._sealer))
            pipe.execute()

    @_translated
    def is_built(self, tenant_id: str, network_id: UUID) -> bool:
        return self._redis.get(f"{_prefix(tenant_id, network_id)}:built") == _LAYOUT

    @_translated
    def mark_built(self, tenant_id: str, network_id: UUID, ttl_seconds: int) -> None:
        # The mark expires so that a view that missed a write (Redis down at that moment)
        # is rebuilt from the record within ttl_seconds.
        self._redis.set(f"{_prefix(tenant_id, network_id)}:built", _LAYOUT, ex=ttl_seconds)

    @_translated
    def claim_rebuild(self, tenant_id: str, network_id: UUID, lease_seconds: int) -> bool:
        # The lease ends by itself, so a rebuilder that died holds no one up for longer.
        key = f"{_prefix(tenant_id, network_id)}:rebuilding"
        return bool(self._redis.set(key, b"1", nx=True, ex=lease_seconds))

    @_translated
    def release_rebuild(self, tenant_id: str, network_id: UUID) -> None:
        self._redis.delete(f"{_prefix(tenant_id, network_id)}:rebuilding")

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
    def search(
        self,
        tenant_id: str,
        network_id: UUID,
        terms: Mapping[str, float],
        query: MemoryQuery,
        *,
        pool: int,
    ) -> list[Candidate]:
        """The query's items (types, confidence floor) holding any of the terms, with their
        BM25 score, best first: of the `pool` best by relevance, those that pass the floor.
        Their content stays sealed: a reader opens the few it chooses (get_many)."""
        prefix = _prefix(tenant_id, network_id)
        ranked = self._index.rank(prefix, terms, query.types, pool)
        if not ranked:
            return []
        raw = self._redis.mget([f"{prefix}:item:{item_id}" for item_id, _ in ranked])
        found = []
        for (item_id, relevance), stored in zip(ranked, raw, strict=True):
            if stored is None:
                continue  # removed meanwhile
            data = json.loads(stored)
            kind, confidence = MemoryType(data["type"]), data["confidence"]
            if kind in query.types and confidence >= query.min_confidence:
                created = datetime.fromisoformat(data["created_at"])
                found.append(Candidate(item_id, kind, confidence, created, relevance))
        return found

    @_translated
    def get_many(
        self, tenant_id: str, network_id: UUID, item_ids: Sequence[UUID]
    ) -> list[MemoryItem]:
        """The items, in the order asked; one not in the view is left out."""
        return self._load(_prefix(tenant_id, network_id), [str(i) for i in item_ids])

    @_translated
    def held(self, tenant_id: str, network_id: UUID) -> set[UUID]:
        """The ids of every item the view holds, of any type."""
        prefix = _prefix(tenant_id, network_id)
        pipe = self._redis.pipeline(transaction=False)
        for kind in MemoryType:
            pipe.zrange(f"{prefix}:type:{kind.value}", 0, -1)
        return {UUID(_text(i)) for ids in pipe.execute() for i in ids}

    @_translated
    def forget(self, tenant_id: str, network_id: UUID, item_ids: Sequence[UUID]) -> None:
        """Take items out of the view, with their index entries."""
        self._index.forget(_prefix(tenant_id, network_id), item_ids)

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

    @_translated
    def set_confidence(
        self, tenant_id: str, network_id: UUID, item_id: UUID, confidence: float, *, at: datetime
    ) -> None:
        """Put the item's new confidence in its copy, unless the copy has a later change.

        The JSON is changed here, not in Lua: Redis's cjson would write floats to 14 digits,
        and the view would no longer say what the record says.
        """
        prefix = _prefix(tenant_id, network_id)
        key, version = f"{prefix}:item:{item_id}", (at - _EPOCH) // timedelta(microseconds=1)
        for _ in range(_SWAP_TRIES):
            raw = self._redis.get(key)
            if raw is None:
                return  # not in the view: a rebuild reads it, new confidence and all
            data = json.loads(raw)
            if data.get("confidence_at", -1) >= version:
                return
            data["confidence"], data["confidence_at"] = confidence, version
            if self._swap(keys=[key], args=[raw, json.dumps(data)]) is not None:
                return
        self._redis.delete(f"{prefix}:built")

    def is_reachable(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def _load(self, prefix: str, ids: Sequence[bytes | str]) -> list[MemoryItem]:
        if not ids:
            return []
        raw = self._redis.mget([f"{prefix}:item:{_text(i)}" for i in ids])
        return [_load(r, self._sealer) for r in raw if r is not None]

    @_translated
    def reseal(self, tenant_id: str | None = None) -> tuple[int, int, int]:
        """Seal every item of the view (of one tenant, or all) under the first data key.

        Answers how many items it saw, sealed anew, and found no key opens; for those, the
        network's view is marked unbuilt, so the next read rebuilds it from the record. So is
        every view whose term index is under another key than the first data key's: a new
        first key hashes terms anew, and the rebuild re-indexes every item under it.
        """
        match = f"mesh:{tenant_id}:mem:*:item:*" if tenant_id is not None else _ITEMS
        swap = self._redis.register_script(_SWAP)
        seen = changed = unreadable = 0
        for key in self._redis.scan_iter(match=match, count=500):
            raw = self._redis.get(key)
            if raw is None:
                continue
            seen += 1
            data = json.loads(raw)
            if self._sealer.is_current(data["content"]) and self._sealer.is_current(
                data["metadata"]
            ):
                continue
            try:
                data["content"] = self._sealer.rotate(data["content"])
                data["metadata"] = self._sealer.rotate_json(data["metadata"])
            except DataKeyError:
                unreadable += 1
                prefix = _prefix(data["tenant_id"], UUID(data["network_id"]))
                self._redis.delete(f"{prefix}:built")
                continue
            changed += int(swap(keys=[key], args=[raw, json.dumps(data)]) is not None)
        match = f"mesh:{tenant_id}:mem:*:stats" if tenant_id is not None else _STATS
        for key in self._redis.scan_iter(match=match, count=500):
            prefix = _text(key).removesuffix(":stats")
            if not self._index.is_current(prefix):
                self._redis.delete(f"{prefix}:built")
        return seen, changed, unreadable


def _prefix(tenant_id: str, network_id: UUID) -> str:
    return f"mesh:{tenant_id}:mem:{network_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dump(item: MemoryItem, sealer: Sealer) -> str:
    return json.dumps(
        {
            "id": str(item.id),
            "tenant_id": item.tenant_id,
            "network_id": str(item.network_id),
            "type": item.type.value,
            "content": sealer.seal(item.content),
            "confidence": item.confidence,
            "created_at": item.created_at.isoformat(),
            "metadata": sealer.seal_json(item.metadata),
            "expires_at": _when(item.expires_at),
            "promoted_at": _when(item.promoted_at),
        }
    )


def _load(raw: bytes | str, sealer: Sealer) -> MemoryItem:
    data = json.loads(raw)
    return MemoryItem(
        id=UUID(data["id"]),
        tenant_id=data["tenant_id"],
        network_id=UUID(data["network_id"]),
        type=MemoryType(data["type"]),
        content=sealer.open(data["content"]),
        confidence=data["confidence"],
        created_at=datetime.fromisoformat(data["created_at"]),
        metadata=sealer.open_json(data["metadata"]),
        expires_at=_moment(data.get("expires_at")),
        promoted_at=_moment(data.get("promoted_at")),
    )


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _moment(text: str | None) -> datetime | None:
    # An item put before lifetimes existed carries neither: it lasts.
    return datetime.fromisoformat(text) if text else None
