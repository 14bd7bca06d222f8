"""Memory write throughput with merging on (a `make bench` suite; alone: `python -m
bench.memory_writes [--quick]`, on the bench's Postgres database and Redis databases).

N writes to one network from 8 writer threads at once, of which 30% restate a fact written
before them in another spelling (case, spacing, punctuation) and merge, and 10% are decisions,
a third of them contradicting an earlier one. Through the real service paths on the bench's
Postgres and Redis (db 8), every value sealed:
  client writes  MemoryService.add, as POST .../memory does: the network checked, the item's
                 fingerprint looked up, the quota held, the row inserted (or the restated item
                 locked and its confidence moved, with its history row), then the view in Redis
  agent writes   as a step records its output (StepLog.record): MemoryView.write in a unit of
                 work of its own, committed, then published; no quota
Baseline, in the same run and from as many threads: plain Redis (db 7), each write an HSET of
the item's fields and a ZADD of its id to its type's index, pipelined: one round trip, with no
record, no merge, no sealing.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import redis
import sqlalchemy as sa

from bench.report import Figure, percentile, publish
from bench.session import Session
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.clock import SystemClock
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import Network, NetworkConfig
from meshcore.services.memory import MemoryService
from meshcore.services.memory_view import MemoryView

TENANT = "bench-merging"
WRITERS = 8
RESTATED, DECISIONS = 0.3, 0.1


@dataclass(frozen=True)
class Write:
    type: MemoryType
    content: str


def workload(count: int, seed: int) -> tuple[list[Write], int]:
    """The writes, in order, and how many distinct items they leave."""
    rng = random.Random(seed)
    writes: list[Write] = []
    facts: list[str] = []
    decisions = 0
    for n in range(count):
        draw = rng.random()
        if draw < DECISIONS:
            subject = f"send the launch email for plan {rng.randrange(count)} on day {n}"
            if decisions and rng.random() < 1 / 3:
                earlier = next(w for w in reversed(writes) if w.type is MemoryType.DECISION)
                subject = f"Never {earlier.content}"
            writes.append(Write(MemoryType.DECISION, subject))
            decisions += 1
        elif draw < DECISIONS + RESTATED and facts:
            fact = rng.choice(facts)
            spelled = rng.choice([fact.upper(), f"  {fact.lower()}!", fact.replace(" ", "  ")])
            writes.append(Write(MemoryType.FACT, spelled))
        else:
            fact = f"Orbit's plan {n} costs ${rng.randrange(5, 50)}.99 a month for team {n}."
            facts.append(fact)
            writes.append(Write(MemoryType.FACT, fact))
    return writes, len(facts) + decisions


def timed(writes: list[Write], write: Callable[[Write], object]) -> tuple[float, list[float]]:
    """Writes a second from WRITERS threads, and each write's latency in ms."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(w: Write) -> None:
        started = time.perf_counter()
        write(w)
        spent = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(spent)

    started = time.perf_counter()
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(one, writes))
    return len(writes) / (time.perf_counter() - started), latencies


class Mesh:
    """One network's memory on the bench's servers, sealed under a key of its own."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        sealer, clock = Sealer([Sealer.generate_key()]), SystemClock()
        self.engine = create_engine(database_url, pool_size=WRITERS + 2, max_overflow=4)
        self.redis = redis.Redis.from_url(redis_url, max_connections=2 * WRITERS)
        self.uow = SqlUnitOfWorkFactory(self.engine, sealer)
        store = RedisMemoryStore(self.redis, sealer)
        self.service = MemoryService(tenant_id=TENANT, uow=self.uow, store=store, clock=clock)
        self.view = MemoryView(tenant_id=TENANT, uow=self.uow, store=store, clock=clock)
        self.clock = clock

    def network(self) -> UUID:
        network = Network.create(
            tenant_id=TENANT, name="bench", description="", config=NetworkConfig(),
            now=self.clock.now(),
        )  # fmt: skip
        with self.uow(TENANT) as work:
            work.networks.add(network)
            work.commit()
        return network.id

    def client(self, network_id: UUID) -> Callable[[Write], object]:
        def write(w: Write) -> object:
            return self.service.add(network_id, type=w.type, content=w.content, confidence=0.8)

        return write

    def agent(self, network_id: UUID) -> Callable[[Write], object]:
        def write(w: Write) -> object:
            item = MemoryItem.create(
                tenant_id=TENANT, network_id=network_id, type=w.type, content=w.content,
                confidence=0.8, now=self.clock.now(),
                metadata={"source_agent": "research", "task_id": str(uuid4()),
                          "subtask": "facts", "iteration": 1},
            )  # fmt: skip
            with self.uow(TENANT) as work:
                written = self.view.write(work, item)
                work.commit()
            self.view.published(written)
            return written

        return write

    def items(self, network_id: UUID) -> int:
        with self.uow(TENANT) as work:
            return work.memory.count(network_id, MemoryQuery())

    def purge(self) -> None:
        with tenancy.across_tenants(self.engine).begin() as db:
            db.execute(sa.text("DELETE FROM networks WHERE tenant_id = :t"), {"t": TENANT})
        for key in self.redis.scan_iter(match=f"mesh:{TENANT}:*", count=1000):
            self.redis.unlink(key)

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def bare(redis_url: str) -> tuple[Callable[[Write], object], redis.Redis]:
    """The baseline: each write an HSET and a ZADD, pipelined, on plain Redis."""
    client = redis.Redis.from_url(redis_url, max_connections=2 * WRITERS)
    network = uuid4()

    def write(w: Write) -> object:
        item_id, now = str(uuid4()), datetime.now(UTC)
        pipe = client.pipeline(transaction=False)
        pipe.hset(
            f"bare:mem:{network}:item:{item_id}",
            mapping={"type": w.type.value, "content": w.content, "confidence": 0.8,
                     "created_at": now.isoformat()},
        )  # fmt: skip
        pipe.zadd(f"bare:mem:{network}:type:{w.type.value}", {item_id: now.timestamp()})
        return pipe.execute()

    return write, client


def measure(database_url: str, mesh_redis: str, bare_redis: str, count: int) -> list[Figure]:
    writes, distinct = workload(count, seed=18)
    mesh = Mesh(database_url, mesh_redis)
    baseline, bare_client = bare(bare_redis)
    try:
        mesh.purge()
        # Warm-up: connections, statement caches, the view's mark.
        timed(workload(2 * WRITERS, seed=1)[0], mesh.client(mesh.network()))
        timed(writes[: 2 * WRITERS], baseline)
        bare_client.flushdb()
        bare_tps, bare_ms = timed(writes, baseline)
        results = {}
        for path in ("client", "agent"):
            network = mesh.network()
            tps, ms = timed(writes, getattr(mesh, path)(network))
            held = mesh.items(network)
            if held != distinct:
                raise RuntimeError(f"{path} writes left {held} items, not {distinct}")
            results[path] = (tps, ms)
    finally:
        mesh.purge()
        mesh.close()
        bare_client.flushdb()
        bare_client.close()
    note = (f"{count} writes, {WRITERS} writers, {RESTATED:.0%} restated, "
            f"{distinct} items left; baseline: plain Redis HSET + ZADD")  # fmt: skip
    figures = []
    for path, label in (("client", "client writes (MemoryService.add)"),
                        ("agent", "agent writes (as a step records)")):  # fmt: skip
        tps, ms = results[path]
        figures += [
            Figure(f"{label}, merging on", tps, bare_tps, "writes/s", note),
            Figure(f"{label}, p99", percentile(ms, 0.99), percentile(bare_ms, 0.99), "ms",
                   "baseline: plain Redis HSET + ZADD, p99"),
        ]  # fmt: skip
    return figures


def run(session: Session) -> list[Figure]:
    servers = session.servers
    count = 1000 if session.quick else 5000
    return measure(servers.database_url, servers.mesh_redis, servers.bare_redis, count)


def main(session: Session) -> None:
    publish("Memory writes with merging (Postgres + Redis)", run(session))


def _cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_writes")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--database", default="mesh_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="without a db number")
    args = parser.parse_args()
    from bench import processes
    from bench.processes import Servers
    from meshcore.logs import configure_logging

    configure_logging("WARNING")
    redis_url = args.redis.rstrip("/")
    servers = Servers(args.postgres, args.database, f"{redis_url}/8", f"{redis_url}/7")
    processes.prepare(servers)
    count = 1000 if args.quick else 5000
    publish(
        "Memory writes with merging (Postgres + Redis)",
        measure(servers.database_url, servers.mesh_redis, servers.bare_redis, count),
    )


if __name__ == "__main__":
    _cli()
