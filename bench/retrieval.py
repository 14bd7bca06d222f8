"""Retrieval by relevance: what a step's memory read costs as a network's memory grows.

One network holding 1k, 10k and 100k items (synthetic text: words drawn from a Zipf-like
vocabulary of 20,000, 8 to 40 words an item, the four memory types, a month of dates), written
through the real RedisMemoryStore (sealed, indexed) on the bench's Redis (db 8). At each size,
a step's read as StepMemory makes it: the terms of a subtask and its task looked up in the
index, the 100 most relevant and the 20 newest items loaded, opened, scored and cut to the
token budget. The queries are four to six words taken from random items, as a subtask names
what it is about: common and rare words alike.

Baseline, in the same run at each size: plain Redis on db 7 with the same number of items,
each a hash, ids in a sorted set by date: ZREVRANGE of the 20 newest ids and HGETALL of each
(one pipeline), the cheapest read of 20 items there is, and what a step read before ranking.
Also at each size, for reference: the same query's postings merged by ZUNIONSTORE (weighted
by idf) into a temporary key and its top 100 read, the one-command alternative whose cost
grows with the postings. Flat, or at worst logarithmic, is the target for the step's read.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import redis

from bench.report import Figure, percentile, publish
from bench.session import Session
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.domain import relevance
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.services.memory_view import MemoryView
from meshcore.services.retrieval import Retrieval, StepMemory

TENANT = "bench-retrieval"
VOCABULARY = 20_000
READS = (MemoryType.FACT, MemoryType.CONTEXT)  # research's
NOW = datetime(2030, 1, 31, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOW


def _words(rng: random.Random) -> list[str]:
    # Rank r drawn with weight 1/r: a few words everywhere, most rare.
    weights = [1 / r for r in range(1, VOCABULARY + 1)]
    return [f"w{n}" for n in rng.choices(range(VOCABULARY), weights=weights, k=200_000)]


def _items(rng: random.Random, network: UUID, start: int, count: int) -> list[MemoryItem]:
    pool = _words(rng)
    items = []
    for n in range(start, start + count):
        words = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(8, 40))]
        items.append(MemoryItem(
            uuid4(), TENANT, network, rng.choice(list(MemoryType)), " ".join(words),
            round(rng.uniform(0.5, 1.0), 2), NOW - timedelta(seconds=rng.random() * 30 * 86_400),
            {"source_agent": "research", "n": n},
        ))  # fmt: skip
    return items


def _queries(rng: random.Random, items: list[MemoryItem], count: int) -> list[str]:
    chosen = rng.sample(items, count)
    return [" ".join(rng.sample(i.content.split(), min(len(i.content.split()), 6))) for i in chosen]


def _timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def _fill_bare(client: redis.Redis, items: list[MemoryItem]) -> None:
    for start in range(0, len(items), 1000):
        pipe = client.pipeline(transaction=False)
        for item in items[start : start + 1000]:
            pipe.hset(f"bare:item:{item.id}", mapping={
                "type": item.type.value, "content": item.content,
                "confidence": item.confidence, "created_at": item.created_at.isoformat(),
            })  # fmt: skip
            pipe.zadd("bare:items", {str(item.id): item.created_at.timestamp()})
        pipe.execute()


def _bare_read(client: redis.Redis) -> None:
    ids = client.zrevrange("bare:items", 0, 19)
    pipe = client.pipeline(transaction=False)
    for i in ids:
        pipe.hgetall(b"bare:item:" + i)
    pipe.execute()


def _zunion(client: redis.Redis, store: RedisMemoryStore, network: UUID, text: str) -> None:
    """The query's postings merged by Redis, weighted by idf, and the top 100 read."""
    prefix = f"mesh:{TENANT}:mem:{network}"
    token = store._index.token  # the bench reads the index's layout, as Redis holds it
    words = relevance.terms(text)
    lists = [(t, f"{prefix}:term:{t.value}:{token(w)}") for t in READS for w in words]
    pipe = client.pipeline(transaction=False)
    for kind in READS:
        pipe.zcard(f"{prefix}:type:{kind.value}")
    for _, key in lists:
        pipe.zcard(key)
    counts = pipe.execute()
    items = dict(zip(READS, counts, strict=False))
    weights = {
        key: relevance.idf(max(items[kind], n), n)
        for (kind, key), n in zip(lists, counts[len(READS) :], strict=True)
        if n
    }
    if not weights:
        return
    temp = f"{prefix}:tmp:{uuid.uuid4().hex}"
    pipe = client.pipeline(transaction=True)
    pipe.zunionstore(temp, weights)
    pipe.zrevrange(temp, 0, 99, withscores=True)
    pipe.delete(temp)
    pipe.execute()


def retrieval(session: Session) -> list[Figure]:
    mesh_redis = redis.Redis.from_url(session.servers.mesh_redis)
    bare = redis.Redis.from_url(session.servers.bare_redis)
    store = RedisMemoryStore(mesh_redis, Sealer([Sealer.generate_key()]))
    network = uuid4()
    view = MemoryView(tenant_id=TENANT, uow=None, store=store)  # type: ignore[arg-type]
    reader = StepMemory(Retrieval(view, _Clock()), 0.5, 20, 2000)
    rng = random.Random(18)
    sizes = (1_000, 10_000, 100_000)
    samples = 60 if session.quick else 300
    ours: dict[int, tuple[float, float]] = {}
    base: dict[int, tuple[float, float]] = {}
    union: dict[int, tuple[float, float]] = {}
    written: list[MemoryItem] = []
    fill_rate: dict[int, float] = {}
    memory_per_item: dict[int, float] = {}
    mesh_redis.delete(*mesh_redis.keys(f"mesh:{TENANT}:*") or ["-"])
    bare.delete(*bare.keys("bare:*") or ["-"])
    try:
        for size in sizes:
            items = _items(rng, network, len(written), size - len(written))
            used = mesh_redis.info("memory")["used_memory"]
            took = _timed(lambda items=items: store.put_many(items))
            fill_rate[size] = len(items) / (took / 1000)
            memory_per_item[size] = (mesh_redis.info("memory")["used_memory"] - used) / len(items)
            store.mark_built(TENANT, network, 3600)
            _fill_bare(bare, items)
            written += items
            queries = _queries(rng, written, samples)
            for text in queries[:10]:  # warm: connections, scripts, caches
                reader.read(network, agent_type="research", reads=READS, subtask=text, task="")
            ours[size] = _p50_p95([
                _timed(lambda t=text: reader.read(
                    network, agent_type="research", reads=READS, subtask=t, task=""
                ))
                for text in queries
            ])  # fmt: skip
            base[size] = _p50_p95([_timed(lambda: _bare_read(bare)) for _ in range(samples)])
            union[size] = _p50_p95([
                _timed(lambda t=text: _zunion(mesh_redis, store, network, t)) for t in queries
            ])  # fmt: skip
            print(f"  retrieval: {size:,} items, p50 {ours[size][0]:.2f} ms "
                  f"(baseline {base[size][0]:.2f} ms)", flush=True)  # fmt: skip
    finally:
        mesh_redis.delete(*mesh_redis.keys(f"mesh:{TENANT}:*") or ["-"])
        bare.delete(*bare.keys("bare:*") or ["-"])
        mesh_redis.close()
        bare.close()
    return _figures(sizes, ours, base, union, fill_rate, memory_per_item)


def _p50_p95(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.50), percentile(samples, 0.95)


def _figures(
    sizes: tuple[int, ...],
    ours: dict[int, tuple[float, float]],
    base: dict[int, tuple[float, float]],
    union: dict[int, tuple[float, float]],
    fill_rate: dict[int, float],
    memory_per_item: dict[int, float],
) -> list[Figure]:
    bound = math.log(sizes[-1]) / math.log(sizes[0])
    figures = []
    for size in sizes:
        for q, name in ((0, "p50"), (1, "p95")):
            figures.append(Figure(
                f"step memory read {name}, {size:,} items", ours[size][q], base[size][q], "ms",
                "baseline: ZREVRANGE 20 + HGETALL each, plain Redis, same size",
            ))  # fmt: skip
    for q, name in ((0, "p50"), (1, "p95")):
        for size in sizes[1:]:
            last = size == sizes[-1]
            ratio = ours[size][q] / ours[sizes[0]][q]
            figures.append(Figure(
                f"step memory read {name}, {size:,} vs 1k items", ours[size][q],
                ours[sizes[0]][q], "ms", "flat or logarithmic in the items",
                f"ratio <= {bound:.2f}" if last else "", (ratio <= bound) if last else None,
            ))  # fmt: skip
    for size in sizes:
        figures.append(Figure(
            f"ZUNIONSTORE alternative p50, {size:,} items", union[size][0], ours[size][0], "ms",
            "baseline: the step's read (index, load, score) at the same size",
        ))  # fmt: skip
    figures.append(Figure(
        "index write, items/s", fill_rate[sizes[-1]], fill_rate[sizes[0]], "items/s",
        f"baseline: the first {sizes[0]:,}; item, type index and postings in one script",
    ))  # fmt: skip
    figures.append(Figure(
        "Redis memory per item, view + index", memory_per_item[sizes[-1]],
        memory_per_item[sizes[0]], "bytes", f"baseline: the first {sizes[0]:,}",
    ))  # fmt: skip
    return figures


def main(session: Session) -> None:
    publish("retrieval (relevance)", retrieval(session))
