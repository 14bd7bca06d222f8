"""Restatements and contradictions on the test Postgres and Redis: many writers of one
network's memory at once lose no write, double no merge, and leave the view agents read
holding exactly the record's items, each with the record's confidence."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from uuid import UUID, uuid4

import pytest
import redis
import sqlalchemy as sa

from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.rotation import rotate_record
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.clock import SystemClock
from meshcore.domain.confidence import ConfidenceSource, reinforced
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import Network, NetworkConfig
from meshcore.services.learning import MemoryLearning
from meshcore.services.memory import MemoryService
from meshcore.services.memory_view import MemoryView
from tests.conftest import DATA_KEYS

pytestmark = pytest.mark.integration

RACERS = 20
FACT, DECISION = MemoryType.FACT, MemoryType.DECISION
T = TypeVar("T")


class World:
    """One tenant's memory over the real servers, its data keys `keys`."""

    def __init__(self, engine: sa.Engine, client: redis.Redis, tenant: str, keys: str) -> None:
        sealer, clock = Sealer.from_text(keys), SystemClock()
        self.engine, self.tenant = engine, tenant
        self.uow = SqlUnitOfWorkFactory(engine, sealer)
        self.store = RedisMemoryStore(client, sealer)
        self.memory = MemoryService(tenant_id=tenant, uow=self.uow, store=self.store, clock=clock)
        self.view = MemoryView(tenant_id=tenant, uow=self.uow, store=self.store, clock=clock)
        self.learning = MemoryLearning(tenant, self.uow, self.store, clock)
        self.network = Network.create(
            tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=clock.now()
        )
        with self.uow(tenant) as work:
            work.networks.add(self.network)
            work.commit()

    def keyed(self, keys: str) -> World:
        """The same tenant and network, under another data key list."""
        other = object.__new__(World)
        other.__dict__.update(self.__dict__)
        sealer, clock = Sealer.from_text(keys), SystemClock()
        other.uow = SqlUnitOfWorkFactory(self.engine, sealer)
        other.store = RedisMemoryStore(self.store._redis, sealer)
        other.memory = MemoryService(
            tenant_id=self.tenant, uow=other.uow, store=other.store, clock=clock
        )
        return other

    def add(self, content: str, type: MemoryType = FACT, confidence: float = 0.8) -> MemoryItem:
        return self.memory.add(self.network.id, type=type, content=content, confidence=confidence)

    def in_record(self) -> dict[UUID, float]:
        with self.uow(self.tenant) as work:
            items = work.memory.list(self.network.id, MemoryQuery(limit=1000))
        return {i.id: i.confidence for i in items}

    def in_view(self) -> dict[UUID, float]:
        """Each item's confidence as an agent reads it: from Redis."""
        items = self.store.query(self.tenant, self.network.id, MemoryQuery(limit=1000))
        return {i.id: i.confidence for i in items}

    def shown(self) -> dict[UUID, MemoryItem]:
        return {i.id: i for i in self.memory.query(self.network.id, MemoryQuery(limit=100))}


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)  # 20 connections: one for each racer
    yield engine
    engine.dispose()


@pytest.fixture
def world(engine: sa.Engine, redis_url: str) -> Iterator[World]:
    client = redis.Redis.from_url(redis_url)
    tenant = f"merging-{uuid4().hex[:8]}"
    yield World(engine, client, tenant, DATA_KEYS)
    with tenancy.across_tenants(engine).begin() as db:  # items, changes, links by cascade
        db.execute(sa.text("DELETE FROM networks WHERE tenant_id = :t"), {"t": tenant})
    keys = list(client.scan_iter(match=f"mesh:{tenant}:*"))
    if keys:
        client.unlink(*keys)
    client.close()


def race(call: Callable[[int], T]) -> list[T]:
    """`call(n)` for n in 0..RACERS-1, each in its own thread, all let go at once."""
    start = threading.Barrier(RACERS)

    def racer(n: int) -> T:
        start.wait()
        return call(n)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(racer, range(RACERS)))


def test_twenty_writers_of_one_fact_make_one_item_and_nineteen_merges(world: World) -> None:
    world.add("Orbit ships in June")  # another fact, so the view is built before the race
    world.memory.query(world.network.id, MemoryQuery())
    spellings = ["Orbit ships on 12 May.", "orbit ships on 12 may", "ORBIT  ships on 12 May!"]

    written = race(lambda n: world.add(spellings[n % 3], confidence=0.8))

    (item_id,) = {w.id for w in written}
    changes = world.learning.history(world.network.id, item_id).changes
    assert len(changes) == RACERS - 1
    assert {(c.source, c.reason) for c in changes} == {
        (ConfidenceSource.MERGE, "restated by a client")
    }
    assert changes[0].before == 0.8
    for previous, change in itertools.pairwise(changes):
        assert change.before == previous.after
        assert change.after == reinforced(previous.after, 0.8)
        assert change.at > previous.at
    record = world.in_record()
    assert len(record) == 2 and record[item_id] == changes[-1].after
    assert world.in_view() == record


def test_twenty_writers_of_twenty_facts_lose_none(world: World) -> None:
    world.memory.query(world.network.id, MemoryQuery())  # the view is built

    written = race(lambda n: world.add(f"Orbit fact number {n}", confidence=0.5 + n / 100))

    assert len({w.id for w in written}) == RACERS
    record = world.in_record()
    assert record == {w.id: w.confidence for w in written}
    assert world.in_view() == record


def test_twenty_writers_of_ten_facts_twice_each_merge_each_once(world: World) -> None:
    world.memory.query(world.network.id, MemoryQuery())

    written = race(lambda n: world.add(f"Orbit fact number {n % 10}.", confidence=0.6))

    ids = {w.id for w in written}
    assert len(ids) == 10
    for item_id in ids:
        (change,) = world.learning.history(world.network.id, item_id).changes
        assert (change.before, change.after) == (0.6, reinforced(0.6, 0.6))
    record = world.in_record()
    assert record == dict.fromkeys(ids, reinforced(0.6, 0.6))
    assert world.in_view() == record


def test_opposite_decisions_written_at_once_are_linked_both_ways(world: World) -> None:
    # As agents write them: a client's writes also take turns at the network's quota.
    subjects = [f"send the launch email on day {n}" for n in range(RACERS // 2)]

    def decide(n: int) -> MemoryItem:
        subject = subjects[n // 2]
        decision = MemoryItem.create(
            tenant_id=world.tenant, network_id=world.network.id, type=DECISION,
            content=subject if n % 2 else f"Never {subject}", confidence=0.7,
            now=SystemClock().now(), metadata={"source_agent": "content"},
        )  # fmt: skip
        with world.uow(world.tenant) as work:
            written = world.view.write(work, decision)
            work.commit()
        return written.item

    written = race(decide)

    shown = world.shown()
    assert len(shown) == RACERS
    for yes, no in zip(written[::2], written[1::2], strict=True):
        assert shown[yes.id].contradicts == (no.id,)
        assert shown[no.id].contradicts == (yes.id,)


def step_output(world: World, task_id: UUID, content: str) -> MemoryItem:
    """What a research step of `task_id` writes, as StepLog.record does: with the step."""
    output = MemoryItem.create(
        tenant_id=world.tenant, network_id=world.network.id, type=FACT, content=content,
        confidence=0.8, now=SystemClock().now(),
        metadata={"source_agent": "research", "agent_id": None, "task_id": str(task_id),
                  "subtask": "facts", "iteration": 1},
    )  # fmt: skip
    with world.uow(world.tenant) as work:
        written = world.view.write(work, output)
        work.commit()
    world.view.published(written)
    return written.item


def test_steps_of_twenty_tasks_writing_twenty_outputs_lose_none(world: World) -> None:
    world.memory.query(world.network.id, MemoryQuery())  # the view is built

    written = race(lambda n: step_output(world, uuid4(), f"Orbit fact number {n}"))

    assert len({w.id for w in written}) == RACERS
    assert world.in_record() == dict.fromkeys((w.id for w in written), 0.8)
    assert world.in_view() == world.in_record()


def test_steps_of_twenty_tasks_restating_one_output_each_still_feed_their_dependants(
    world: World,
) -> None:
    world.memory.query(world.network.id, MemoryQuery())  # the view is built
    tasks = [uuid4() for _ in range(RACERS)]
    spellings = ["Orbit ships in May.", "orbit ships in may"]

    race(lambda n: step_output(world, tasks[n], spellings[n % 2]))

    (held,) = world.in_record()
    for task_id in tasks:
        (dependency,) = world.view.for_subtasks(world.network.id, task_id, ["facts"])
        assert dependency.id == held
        assert dependency.content.casefold().startswith("orbit ships in may")
        assert (dependency.task_id, dependency.subtask) == (str(task_id), "facts")
        assert dependency.metadata["iteration"] == 1
    assert len(world.learning.history(world.network.id, held).changes) == RACERS - 1
    assert world.in_view() == world.in_record()


def test_a_rotation_computes_fingerprints_again_under_the_new_key(world: World) -> None:
    old = world.keyed(DATA_KEYS)
    fact = old.add("Orbit ships in May")
    send = old.add("Send on Tuesday", DECISION)
    new_key = Sealer.generate_key()
    both = world.keyed(f"{new_key},{DATA_KEYS}")
    # Before the rotation, the new key's writers find what the old key fingerprinted.
    assert both.add("orbit ships in may").id == fact.id
    # Two writers on two key lists may have written one text twice meanwhile.
    twin = world.keyed(new_key).add("Send on Tuesday!", DECISION)

    (done,) = [
        r
        for r in rotate_record(world.engine, Sealer.from_text(f"{new_key},{DATA_KEYS}"),
                               tenant_id=world.tenant)
        if r.table == "memory_items"
    ]  # fmt: skip

    assert done.resealed == 2 and not done.unreadable
    only_new = world.keyed(new_key)
    assert only_new.add("ORBIT SHIPS IN MAY.").id == fact.id
    assert only_new.add("Send on Tuesday", DECISION).id == twin.id  # the twin kept the fingerprint
    dont = only_new.add("Don't send on Tuesday", DECISION)
    assert set(dont.contradicts) == {send.id, twin.id}
    assert len(only_new.in_record()) == 4
