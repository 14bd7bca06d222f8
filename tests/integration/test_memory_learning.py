"""What memory learns, on the test Postgres and Redis: verdicts move confidence in the record
and in the view agents read, each change kept with its reason, none lost to a race."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest
import redis
import sqlalchemy as sa

from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.clock import SystemClock
from meshcore.domain.confidence import ConfidenceSource, reinforced
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import Network, NetworkConfig
from meshcore.services.learning import MemoryLearning
from meshcore.services.memory import MemoryService
from tests.conftest import DATA_KEYS

pytestmark = pytest.mark.integration

CRITIC, RATING = ConfidenceSource.CRITIC, ConfidenceSource.RATING
RACERS = 20


class World:
    """One tenant's memory and learning over the real servers."""

    def __init__(self, engine: sa.Engine, client: redis.Redis, tenant: str) -> None:
        sealer, clock = Sealer.from_text(DATA_KEYS), SystemClock()
        self.uow = SqlUnitOfWorkFactory(engine, sealer)
        self.store = RedisMemoryStore(client, sealer)
        self.tenant = tenant
        self.memory = MemoryService(tenant_id=tenant, uow=self.uow, store=self.store, clock=clock)
        self.learning = MemoryLearning(tenant, self.uow, self.store, clock)
        self.network = Network.create(
            tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=clock.now()
        )
        with self.uow(tenant) as work:
            work.networks.add(self.network)
            work.commit()

    def add(self, content: str, confidence: float = 0.5) -> MemoryItem:
        return self.memory.add(
            self.network.id, type=MemoryType.FACT, content=content, confidence=confidence
        )

    def in_view(self) -> dict[UUID, float]:
        """Each item's confidence as an agent reads it: from Redis."""
        query = MemoryQuery(limit=1000)
        return {i.id: i.confidence for i in self.store.query(self.tenant, self.network.id, query)}

    def in_record(self, item_id: UUID) -> float:
        with self.uow(self.tenant) as work:
            return work.memory.get(self.network.id, item_id).confidence


@pytest.fixture
def world(database_url: str, redis_url: str) -> Iterator[World]:
    engine = create_engine(database_url)  # 20 connections: one for each racer
    client = redis.Redis.from_url(redis_url)
    tenant = f"learning-{uuid4().hex[:8]}"
    yield World(engine, client, tenant)
    with tenancy.across_tenants(engine).begin() as db:  # items and changes go by cascade
        db.execute(sa.text("DELETE FROM networks WHERE tenant_id = :t"), {"t": tenant})
    keys = list(client.scan_iter(match=f"mesh:{tenant}:*"))
    if keys:
        client.unlink(*keys)
    client.close()
    engine.dispose()


def test_a_pass_then_a_fail_raise_then_lower_confidence_in_the_record_and_the_view(
    world: World,
) -> None:
    items = [world.add(f"fact {i}", confidence) for i, confidence in enumerate((0.3, 0.5, 0.9))]
    ids, task_id = [i.id for i in items], uuid4()
    world.memory.query(world.network.id, MemoryQuery())  # the view is built, as agents use it

    passed = world.learning.learn(
        world.network.id, ids, 1.0, source=CRITIC, reason="passed (0.9)", task_id=task_id
    )
    risen = {c.item_id: c.after for c in passed}
    failed = world.learning.learn(
        world.network.id, ids, -1.0, source=RATING, reason="rated 1/5", task_id=task_id
    )
    fallen = {c.item_id: c.after for c in failed}

    for item in items:
        up = reinforced(item.confidence, 1.0)
        assert item.confidence < risen[item.id] == up
        assert fallen[item.id] == reinforced(up, -1.0) < up
        assert world.in_record(item.id) == fallen[item.id]
        history = world.learning.history(world.network.id, item.id)
        assert [(c.source, c.reason, c.before, c.after) for c in history.changes] == [
            (CRITIC, "passed (0.9)", item.confidence, up),
            (RATING, "rated 1/5", up, fallen[item.id]),
        ]
        assert history.confidence == fallen[item.id]
    assert world.in_view() == fallen
    assert {
        i.id: i.confidence for i in world.memory.query(world.network.id, MemoryQuery())
    } == fallen


def test_concurrent_verdicts_on_one_item_lose_nothing_and_chain_each_from_the_last(
    world: World,
) -> None:
    item = world.add("the launch is in May")
    world.memory.query(world.network.id, MemoryQuery())  # the view is built
    start = threading.Barrier(RACERS)

    def verdict(n: int) -> int:
        start.wait()
        made = world.learning.learn(
            world.network.id,
            [item.id],
            1.0 if n % 3 else -0.5,
            source=CRITIC,
            reason=f"verdict {n}",
            task_id=None,
        )
        return len(made)

    with ThreadPoolExecutor(RACERS) as pool:
        made = list(pool.map(verdict, range(RACERS)))

    assert made == [1] * RACERS
    changes = world.learning.history(world.network.id, item.id).changes
    assert sorted(c.reason for c in changes) == sorted(f"verdict {n}" for n in range(RACERS))
    assert changes[0].before == item.confidence
    for previous, change in itertools.pairwise(changes):
        assert change.before == previous.after
        assert change.at > previous.at
    assert world.in_record(item.id) == changes[-1].after
    assert world.in_view() == {item.id: changes[-1].after}
