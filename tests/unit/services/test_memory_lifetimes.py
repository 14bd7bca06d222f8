"""Memory's lifetimes and bound as the services meet them, on fakes: agents' context that ends
with its task, a type's time to live, promotion, a network held to its bound, the sweeper."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID

import pytest

from meshcore.domain.errors import QuotaExceeded
from meshcore.domain.lifetimes import MemoryPolicy
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import Network, NetworkConfig
from meshcore.domain.quotas import Quotas
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.services.lifetimes import MemoryPromotion, MemorySweep
from meshcore.services.memory import MemoryService
from meshcore.services.recovery import Sweeper
from tests.fake_lifetimes import FakeMemoryExpiry
from tests.fakes import FakeMesh

VERDICT = "Answer format: verdict_json"
# The personalization agent writes context; the content agent, which depends on it, reads it.
PLAN: list[dict[str, object]] = [
    {"key": "audience", "agent": "personalization", "description": "Profile the segment"},
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {
        "key": "copy",
        "agent": "content",
        "description": "Write it",
        "depends_on": ["audience", "facts"],
    },
]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def sweep(mesh: FakeMesh) -> MemorySweep:
    return MemorySweep(expiry=FakeMemoryExpiry(mesh.database), store=mesh.store)


def run(mesh: FakeMesh, network: Network) -> Task:
    mesh.models.script(VERDICT, json.dumps({"score": 0.95, "feedback": "Good."}))
    task = mesh.tasks.submit(
        network.id, description="Launch email", context={}, priority=Priority.NORMAL, plan=PLAN
    )
    mesh.drain()
    return mesh.tasks.get(network.id, task.id)


def of_type(mesh: FakeMesh, kind: MemoryType) -> list[MemoryItem]:
    return [m for m in mesh.database.committed.memory.values() if m.type is kind]


def in_view(mesh: FakeMesh, network: Network) -> set[UUID]:
    return {m.id for m in mesh.store.query("acme", network.id, MemoryQuery(limit=100))}


def test_an_agents_context_is_read_by_its_task_and_goes_once_the_task_has_ended(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    done = run(mesh, network)
    context = of_type(mesh, MemoryType.CONTEXT)
    copy = next(s for s in done.subtasks if s.key == "copy")
    facts = of_type(mesh, MemoryType.FACT)

    swept = sweep(mesh).sweep(mesh.clock.now())

    assert done.status is TaskStatus.COMPLETED
    assert len(context) == 1 and copy.step is not None
    assert str(context[0].id) in copy.step.memory_read
    assert swept == {"memory_task_ended": 1}
    assert of_type(mesh, MemoryType.CONTEXT) == []
    assert context[0].id not in in_view(mesh, network)
    assert facts and of_type(mesh, MemoryType.FACT) == facts


def test_a_promoted_context_item_outlives_its_task(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    run(mesh, network)
    context = of_type(mesh, MemoryType.CONTEXT)[0]
    promotion = MemoryPromotion(tenant_id="acme", uow=mesh.uow, store=mesh.store, clock=mesh.clock)

    kept = promotion.promote(network.id, context.id)
    swept = sweep(mesh).sweep(mesh.clock.now())

    assert kept.promoted_at == mesh.clock.now()
    assert swept == {}
    assert of_type(mesh, MemoryType.CONTEXT) == [kept]
    assert mesh.store.get_many("acme", network.id, [context.id])[0].promoted_at is not None


def test_an_agents_fact_takes_its_types_time_to_live_and_expires_after_it(
    mesh: FakeMesh,
) -> None:
    config = NetworkConfig(memory=MemoryPolicy(ttl_seconds={MemoryType.FACT: 3600}))
    network = mesh.create_network(config)
    run(mesh, network)
    fact = of_type(mesh, MemoryType.FACT)[0]
    decisions = of_type(mesh, MemoryType.DECISION)

    early = sweep(mesh).sweep(mesh.clock.now())
    mesh.clock.advance(3601)
    late = sweep(mesh).sweep(mesh.clock.now())

    assert (fact.expires_at - fact.created_at).total_seconds() == 3600  # type: ignore[operator]
    assert all(d.expires_at is None for d in decisions)
    assert "memory_expired" not in early
    assert late["memory_expired"] == 1
    assert of_type(mesh, MemoryType.FACT) == []
    assert fact.id not in in_view(mesh, network)


def test_a_fact_said_again_lives_its_time_to_live_from_the_restatement(mesh: FakeMesh) -> None:
    config = NetworkConfig(memory=MemoryPolicy(ttl_seconds={MemoryType.FACT: 3600}))
    network = mesh.create_network(config)
    service = memory(mesh, bound=1000)
    fact = service.add(
        network.id, type=MemoryType.FACT, content="Orbit ships in May", confidence=0.8
    )
    mesh.clock.advance(3000)
    again = service.add(
        network.id, type=MemoryType.FACT, content="Orbit ships in May.", confidence=0.8
    )

    mesh.clock.advance(601)  # past the first lifetime, within the second
    kept = sweep(mesh).sweep(mesh.clock.now())
    in_record = of_type(mesh, MemoryType.FACT)
    seen = {m.id: m for m in mesh.store.query("acme", network.id, MemoryQuery(limit=100))}
    mesh.clock.advance(3000)
    gone = sweep(mesh).sweep(mesh.clock.now())

    assert again.id == fact.id and again.expires_at == again.created_at + timedelta(seconds=6600)
    assert "memory_expired" not in kept and [m.id for m in in_record] == [fact.id]
    assert seen[fact.id].expires_at == again.expires_at  # the view agrees with the record
    assert gone == {"memory_expired": 1} and of_type(mesh, MemoryType.FACT) == []


def test_a_fact_past_its_time_to_live_is_not_read_though_not_yet_swept(mesh: FakeMesh) -> None:
    config = NetworkConfig(memory=MemoryPolicy(ttl_seconds={MemoryType.FACT: 3600}))
    network = mesh.create_network(config)
    fact = memory(mesh, bound=1000).add(
        network.id, type=MemoryType.FACT, content="Orbit costs $12 a month", confidence=0.9
    )

    def read_by(task: Task) -> set[str]:
        return {i for s in task.subtasks if s.step is not None for i in s.step.memory_read}

    within = run(mesh, network)
    mesh.clock.advance(3601)  # past its lifetime; no sweep has run
    past = run(mesh, network)

    assert str(fact.id) in read_by(within)
    assert str(fact.id) not in read_by(past)
    assert fact.id in mesh.database.committed.memory  # still in the record until the sweep


def memory(mesh: FakeMesh, *, bound: int, quota: int = 100_000) -> MemoryService:
    return MemoryService(
        tenant_id="acme", uow=mesh.uow, store=mesh.store, clock=mesh.clock,
        quotas=Quotas(memory_items_per_network=quota), memory_bound=bound,
    )  # fmt: skip


def test_a_network_past_its_bound_lets_its_least_valuable_item_go(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    service = memory(mesh, bound=2)
    doubtful = service.add(network.id, type=MemoryType.FACT, content="June?", confidence=0.2)
    trusted = service.add(network.id, type=MemoryType.FACT, content="May", confidence=0.9)

    weakest = service.add(network.id, type=MemoryType.FACT, content="July?", confidence=0.1)

    assert set(mesh.database.committed.memory) == {trusted.id, weakest.id}
    assert in_view(mesh, network) == {trusted.id, weakest.id}
    assert doubtful.id not in in_view(mesh, network)


def test_at_a_bound_within_the_quota_a_client_is_taken_past_it_refused(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    bounded, capped = memory(mesh, bound=2, quota=2), memory(mesh, bound=5, quota=2)
    for content in ("May", "June", "July"):
        mesh.clock.advance(60)  # of items alike, the oldest goes
        bounded.add(network.id, type=MemoryType.FACT, content=content, confidence=0.5)
    other = mesh.create_network()
    for content in ("May", "June"):
        capped.add(other.id, type=MemoryType.FACT, content=content, confidence=0.5)

    with pytest.raises(QuotaExceeded):
        capped.add(other.id, type=MemoryType.FACT, content="July", confidence=0.5)

    held = [m for m in mesh.database.committed.memory.values() if m.network_id == network.id]
    assert [m.content for m in held] == ["June", "July"]


def test_the_sweeper_sweeps_memory_with_the_rest(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    run(mesh, network)
    sweeper = Sweeper(
        finder=mesh.uow,
        coordination=lambda t: mesh.for_tenant(t).coordination,
        clock=mesh.clock,
        stall_seconds=30.0,
        memory=sweep(mesh),
    )

    assert sweeper.sweep() == {"memory_task_ended": 1}
