"""What a step and a client get of shared memory: ranked by relevance, within a budget."""

from __future__ import annotations

from uuid import UUID

import pytest

from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.domain.agent_types import AgentTypeDef
from meshcore.domain.errors import InvalidInput
from meshcore.domain.memory import MemoryQuery, MemoryType
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.services.agent_steps import StepRunner
from meshcore.services.networks import AgentSpec
from tests.fakes import FakeMesh
from tests.unit.services.memory_items import add

PRICE = "Orbit costs $9 a month for teachers; schools pay $6 per seat"
SUBTASK = "Find what teachers pay for Orbit"


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def planned(mesh: FakeMesh, network_id: UUID, agent: str = "research") -> Task:
    task = mesh.tasks.submit(
        network_id,
        description="Launch Orbit to schools",
        context={},
        priority=Priority.NORMAL,
        plan=[{"key": "facts", "agent": agent, "description": SUBTASK}],
    )
    assert mesh.dispatcher.deliver_next(mesh.coordination) is not None
    assert mesh.tasks.get(network_id, task.id).status is TaskStatus.RUNNING
    return task


def distractors(mesh: FakeMesh, network_id: UUID, count: int) -> None:
    for n in range(count):
        add(mesh, network_id, f"Orbit launch note {n}: the spring campaign colours are blue")


def test_a_step_reads_the_item_its_subtask_is_about_first_among_newer_ones(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    price = add(mesh, network.id, PRICE)
    mesh.clock.advance(30 * 86_400)
    distractors(mesh, network.id, 40)
    task = planned(mesh, network.id)

    step = mesh.steps.run_subtask(task.id, 1, "facts")

    assert step is not None
    assert step.memory_read[0] == str(price.id)
    assert len(step.memory_read) == 20  # MESH_MEMORY_READ_LIMIT: the newest fill the rest
    (call,) = mesh.models.calls
    shared = call.user.split("Shared memory:")[1]
    assert shared.index(PRICE) < shared.index("Orbit launch note")


def test_with_nothing_matching_a_step_reads_the_newest_confident_items(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    old = add(mesh, network.id, "Spring colours are blue")
    new = add(mesh, network.id, "Autumn colours are red")
    add(mesh, network.id, "Winter colours are grey", confidence=0.2)
    task = planned(mesh, network.id)

    step = mesh.steps.run_subtask(task.id, 1, "facts")

    assert step is not None
    assert step.memory_read == (str(new.id), str(old.id))


def runner(mesh: FakeMesh, **settings: int) -> StepRunner:
    return StepRunner(
        tenant_id=mesh.tenant_id,
        uow=mesh.uow,
        memory=mesh.store,
        activity=RedisAgentActivity(mesh.redis),
        models=mesh.models,
        clock=mesh.clock,
        revisions=mesh.revisions,
        **settings,  # type: ignore[arg-type]
    )


def test_a_step_reads_only_what_fits_its_token_budget(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    long = add(mesh, network.id, "Orbit for teachers: " + "detail " * 200)  # 350 tokens
    short = add(mesh, network.id, PRICE)
    task = planned(mesh, network.id)

    step = runner(mesh, memory_tokens=300).run_subtask(task.id, 1, "facts")

    assert step is not None
    assert step.memory_read == (str(short.id),)
    assert str(long.id) not in step.memory_read


def reader(mesh: FakeMesh, memory_tokens: int | None) -> AgentTypeDef:
    definition = AgentTypeDef(
        name="pricer",
        description="Finds prices.",
        role="You find prices.",
        reads=(MemoryType.FACT,),
        memory_tokens=memory_tokens,
    )
    return mesh.agent_types.create(definition)


@pytest.mark.parametrize(("memory_tokens", "read"), [(None, 2), (20, 1), (0, 0)])
def test_an_agent_types_memory_tokens_overrides_the_setting(
    mesh: FakeMesh, memory_tokens: int | None, read: int
) -> None:
    reader(mesh, memory_tokens)
    team = [AgentSpec(t) for t in ("coordinator", "critic", "pricer")]
    network = mesh.networks.create(
        name="n", description="", config=NetworkConfig(quality_threshold=0.0), agents=team
    )
    add(mesh, network.id, PRICE)  # 16 tokens
    add(mesh, network.id, "Teachers asked for a yearly plan")  # 8 tokens
    task = planned(mesh, network.id, agent="pricer")

    step = mesh.steps.run_subtask(task.id, 1, "facts")

    assert step is not None
    assert len(step.memory_read) == read


def test_while_redis_is_down_a_search_scores_the_records_newest_items(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    price = add(mesh, network.id, PRICE)
    distractors(mesh, network.id, 5)
    mesh.redis.connected = False  # fakeredis then raises ConnectionError

    ranked, total = mesh.memory.ranked(
        network.id, MemoryQuery(), text="what do teachers pay", agent=None, types_given=False
    )

    assert [r.item.id for r in ranked] == [price.id]
    assert total == 1


def test_a_client_ranks_for_an_agent_type_among_the_types_it_reads(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    fact = add(mesh, network.id, "Orbit price is $9", type=MemoryType.FACT)
    feedback = add(mesh, network.id, "Orbit price is too high", type=MemoryType.FEEDBACK)
    add(mesh, network.id, "Orbit price layout", type=MemoryType.CONTEXT)

    def ranked(agent: str, **query: object) -> list[UUID]:
        found, _ = mesh.memory.ranked(
            network.id, MemoryQuery(**query), text="Orbit price", agent=agent,  # type: ignore[arg-type]
            types_given=bool(query),
        )  # fmt: skip
        return [r.item.id for r in found]

    # The critic reads facts and decisions, and weighs feedback up when asked for it.
    assert ranked("critic") == [fact.id]
    assert ranked("critic", types=(MemoryType.FACT, MemoryType.FEEDBACK)) == [
        feedback.id, fact.id
    ]  # fmt: skip
    assert ranked("research", types=(MemoryType.FACT, MemoryType.FEEDBACK)) == [
        fact.id, feedback.id
    ]  # fmt: skip


def test_an_agent_type_no_one_defined_is_refused(mesh: FakeMesh) -> None:
    network = mesh.create_network()

    with pytest.raises(InvalidInput, match="agent"):
        mesh.memory.ranked(network.id, MemoryQuery(), text=None, agent="nobody", types_given=False)


def test_an_agent_without_text_ranks_the_newest_by_confidence_and_recency(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    sure = add(mesh, network.id, "Orbit is blue", confidence=0.95)
    unsure = add(mesh, network.id, "Orbit is green", confidence=0.55)

    ranked, _ = mesh.memory.ranked(
        network.id, MemoryQuery(), text=None, agent="research", types_given=False
    )

    assert [r.item.id for r in ranked] == [sure.id, unsure.id]
    assert all(r.score.relevance == 0 for r in ranked)
