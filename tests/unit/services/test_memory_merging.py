"""A restated fact or decision merges into the item that holds it; a decision that
contradicts another is linked to it; a step whose output merged still feeds its dependants."""

from __future__ import annotations

from uuid import UUID

import pytest

from meshcore.domain.confidence import ConfidenceSource, reinforced
from meshcore.domain.errors import QuotaExceeded
from meshcore.domain.idempotency import IdempotencyKey
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import Network, NetworkConfig
from meshcore.domain.quotas import Quotas
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.services.memory import MemoryService
from tests.fakes import FakeMesh

FACT, DECISION = MemoryType.FACT, MemoryType.DECISION
PLAN: list[dict[str, object]] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "copy", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


@pytest.fixture
def network(mesh: FakeMesh) -> Network:
    return mesh.create_network()


def add(
    mesh: FakeMesh,
    network: Network,
    content: str,
    type: MemoryType = FACT,
    confidence: float = 0.6,
    **kwargs: object,
) -> MemoryItem:
    mesh.clock.advance(60)
    return mesh.memory.add(
        network.id, type=type, content=content, confidence=confidence, **kwargs  # type: ignore[arg-type]
    )


def stored(mesh: FakeMesh) -> dict[UUID, MemoryItem]:
    return mesh.database.committed.memory


def in_view(mesh: FakeMesh, network: Network) -> dict[UUID, float]:
    items = mesh.store.query("acme", network.id, MemoryQuery(limit=100))
    return {i.id: i.confidence for i in items}


def test_a_fact_restated_merges_into_the_first_and_raises_its_confidence(
    mesh: FakeMesh, network: Network
) -> None:
    first = add(mesh, network, "Orbit ships on 12 May.", confidence=0.6)
    mesh.memory.query(network.id, MemoryQuery())  # the view is built, as agents use it

    again = add(mesh, network, "  orbit SHIPS on 12 may ", confidence=0.9)

    raised = reinforced(0.6, 0.9)
    assert (again.id, again.content, again.created_at) == (
        first.id, "Orbit ships on 12 May.", first.created_at,
    )  # fmt: skip
    assert again.confidence == raised > first.confidence
    assert list(stored(mesh)) == [first.id]
    (change,) = mesh.learning.history(network.id, first.id).changes
    assert (change.source, change.reason, change.before, change.after, change.task_id) == (
        ConfidenceSource.MERGE, "restated by a client", 0.6, raised, None,
    )  # fmt: skip
    assert in_view(mesh, network) == {first.id: raised}


def test_a_restatement_naming_a_task_says_so_in_the_history(
    mesh: FakeMesh, network: Network
) -> None:
    first = add(mesh, network, "Orbit ships in May")
    task_id = "6b1c3d1e-0000-4000-8000-000000000001"

    add(mesh, network, "Orbit ships in May", metadata={"task_id": task_id})

    (change,) = mesh.learning.history(network.id, first.id).changes
    assert change.reason == f"restated by a client in task {task_id}"
    assert str(change.task_id) == task_id


@pytest.mark.parametrize("type", [MemoryType.CONTEXT, MemoryType.FEEDBACK])
def test_context_and_feedback_are_kept_each_time(
    mesh: FakeMesh, network: Network, type: MemoryType
) -> None:
    first = add(mesh, network, "Audience: developers", type)
    second = add(mesh, network, "Audience: developers", type)

    assert first.id != second.id
    assert len(stored(mesh)) == 2


def test_the_same_words_as_another_type_or_in_another_network_are_another_item(
    mesh: FakeMesh, network: Network
) -> None:
    fact = add(mesh, network, "Lead with the price")
    decision = add(mesh, network, "Lead with the price", DECISION)
    elsewhere = add(mesh, mesh.create_network(), "Lead with the price")

    assert len({fact.id, decision.id, elsewhere.id}) == 3


def test_a_retry_under_its_idempotency_key_merges_nothing_twice(
    mesh: FakeMesh, network: Network
) -> None:
    first = add(mesh, network, "Orbit ships in May")
    key = IdempotencyKey("retry-1", "print-1")

    merged = add(mesh, network, "orbit ships in may", idempotency=key)
    retried = add(mesh, network, "orbit ships in may", idempotency=key)

    assert merged.id == retried.id == first.id
    assert retried.confidence == merged.confidence
    assert len(mesh.learning.history(network.id, first.id).changes) == 1


def test_a_restatement_takes_no_slot_of_a_full_quota(mesh: FakeMesh, network: Network) -> None:
    limited = MemoryService(
        tenant_id="acme", uow=mesh.uow, store=mesh.store, clock=mesh.clock,
        quotas=Quotas(memory_items_per_network=1),
    )  # fmt: skip
    first = limited.add(network.id, type=FACT, content="Orbit ships in May", confidence=0.5)

    again = limited.add(network.id, type=FACT, content="Orbit ships in May!", confidence=0.5)
    with pytest.raises(QuotaExceeded):
        limited.add(network.id, type=FACT, content="Orbit ships in June", confidence=0.5)

    assert again.id == first.id
    assert list(stored(mesh)) == [first.id]


def test_opposite_decisions_on_one_subject_are_linked_both_ways(
    mesh: FakeMesh, network: Network
) -> None:
    send = add(mesh, network, "Send on Tuesday", DECISION)
    other = add(mesh, network, "Send on Thursday", DECISION)
    fact = add(mesh, network, "Don't send on Tuesday")  # a fact: only decisions contradict

    dont = add(mesh, network, "Don't send on Tuesday!", DECISION)

    assert send.contradicts == () and fact.contradicts == ()
    assert dont.contradicts == (send.id,)
    shown = {i.id: i.contradicts for i in mesh.memory.query(network.id, MemoryQuery())}
    assert shown == {send.id: (dont.id,), dont.id: (send.id,), other.id: (), fact.id: ()}


def test_a_decision_restated_keeps_its_links(mesh: FakeMesh, network: Network) -> None:
    send = add(mesh, network, "Send on Tuesday", DECISION)
    dont = add(mesh, network, "Never send on Tuesday", DECISION)

    again = add(mesh, network, "send on tuesday", DECISION)

    assert again.id == send.id
    assert again.contradicts == (dont.id,)


def started(mesh: FakeMesh, network: Network) -> Task:
    task = mesh.tasks.submit(
        network.id, description="Launch Orbit", context={}, priority=Priority.NORMAL, plan=PLAN
    )
    assert mesh.dispatcher.deliver_next(mesh.coordination) is not None
    running = mesh.tasks.get(network.id, task.id)
    assert running.status is TaskStatus.RUNNING
    return running


def test_a_step_whose_output_merged_still_feeds_the_step_that_depends_on_it(
    mesh: FakeMesh, network: Network
) -> None:
    known = add(mesh, network, "Orbit ships in May", confidence=0.5)
    mesh.models.script("Your subtask: Find the facts", "Orbit ships in May.")
    task = started(mesh, network)

    facts = mesh.steps.run_subtask(task.id, 1, "facts")
    copy = mesh.steps.run_subtask(task.id, 1, "copy")

    assert facts is not None and copy is not None
    assert list(stored(mesh)).count(known.id) == 1
    assert [i.type for i in stored(mesh).values()].count(FACT) == 1  # the output merged
    (change,) = mesh.learning.history(network.id, known.id).changes
    assert change.reason == f"restated by the research agent in task {task.id}"
    assert change.after == reinforced(0.5, 0.8)  # as sure as research writes its facts
    (call,) = mesh.models.calls_with("Your subtask: Write it")
    assert '<data source="agents">\n- [research] Orbit ships in May\n</data>' in call.user
    assert str(known.id) in copy.memory_read
    # The merged item is in the view with its new confidence, once.
    assert in_view(mesh, network)[known.id] == change.after


def test_a_step_restating_another_tasks_step_feeds_its_own_tasks_next_step(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network(NetworkConfig(max_iterations=1))
    mesh.models.script("Your subtask: Find the facts", "Orbit ships in May.", "orbit ships in may")
    first = started(mesh, network)
    mesh.drain()  # the whole first task
    second = started(mesh, network)

    mesh.steps.run_subtask(second.id, 1, "facts")
    mesh.steps.run_subtask(second.id, 1, "copy")

    (held,) = [i for i in stored(mesh).values() if i.type is FACT]
    assert held.task_id == str(first.id)
    changes = mesh.learning.history(network.id, held.id).changes
    assert changes[-1].reason == f"restated by the research agent in task {second.id}"
    *_, call = mesh.models.calls_with("Your subtask: Write it")
    assert "- [research] Orbit ships in May." in call.user


def test_a_revision_restating_the_first_iterations_output_feeds_the_revised_steps(
    mesh: FakeMesh,
) -> None:
    # The dependants read only their own iteration's work: the restated item, written in
    # iteration 1, is read in iteration 2 as iteration 2's output.
    network = mesh.create_network(NetworkConfig(max_iterations=2, quality_threshold=1.0))
    mesh.models.script("Your subtask: Find the facts", "Orbit ships in May.", "Orbit ships in May")
    task = started(mesh, network)

    mesh.drain()

    (held,) = [i for i in stored(mesh).values() if i.type is FACT]
    first_copy, second_copy = mesh.models.calls_with("Your subtask: Write it")
    assert "- [research] Orbit ships in May." in first_copy.user
    assert "- [research] Orbit ships in May." in second_copy.user
    recorded = mesh.tasks.get(network.id, task.id).subtasks
    (revised,) = [s.step for s in recorded if s.iteration == 2 and s.key == "copy"]
    assert revised is not None and str(held.id) in revised.memory_read
