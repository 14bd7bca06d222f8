from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from meshcore.domain.errors import Conflict, InvalidInput, InvalidPlan, NotFound
from meshcore.domain.network import AgentType, NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.ports import Page
from tests.fakes import Call, FakeClock, FakeDatabase, FakeDispatcher, FakeMesh

TWO_WAVES: list[dict[str, object]] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "copy", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def submit(
    mesh: FakeMesh,
    network_id: UUID | None = None,
    *,
    description: str = "Write the launch email for Orbit",
    priority: Priority = Priority.NORMAL,
    auto_process: bool = True,
    plan: list[dict[str, object]] | None = None,
) -> Task:
    """Submit a launch-email task to `network_id` (a new network by default)."""
    return mesh.tasks.submit(
        network_id or mesh.create_network().id,
        description=description,
        context={"segment": "trial users"},
        priority=priority,
        auto_process=auto_process,
        plan=plan,
    )


def test_submit_enqueues_only_after_the_task_is_committed() -> None:
    database, clock = FakeDatabase(), FakeClock()
    committed_at_send: list[TaskStatus | None] = []

    def check(call: Call) -> None:
        row = database.committed.tasks.get(call.ref.task_id)
        committed_at_send.append(row.status if row else None)

    dispatcher = FakeDispatcher(clock=clock, on_call=check)
    mesh = FakeMesh.build("acme", database=database, clock=clock, dispatcher=dispatcher)

    task = submit(mesh)

    assert mesh.dispatcher.names() == ["coordinate"]
    assert mesh.dispatcher.calls[0].ref.task_id == task.id
    assert committed_at_send == [TaskStatus.QUEUED]


def test_a_submitted_task_is_queued_with_its_deadline_from_the_network(mesh: FakeMesh) -> None:
    network = mesh.create_network(NetworkConfig(timeout_seconds=120))

    task = submit(mesh, network.id, priority=Priority.HIGH)

    stored = mesh.tasks.get(network.id, task.id)
    assert stored.status is TaskStatus.QUEUED
    assert stored.deadline_at == mesh.clock.now() + timedelta(seconds=120)
    assert stored.context == {"segment": "trial users"}
    assert [e.status for e in stored.history] == [TaskStatus.QUEUED]
    assert stored.subtasks == []
    ref = mesh.dispatcher.calls[0].ref
    assert (ref.tenant_id, ref.task_id, ref.priority) == ("acme", task.id, Priority.HIGH)


def test_a_task_held_for_later_is_not_enqueued_until_processed(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    task = submit(mesh, network.id, auto_process=False)

    assert mesh.dispatcher.calls == []
    assert mesh.tasks.get(network.id, task.id).status is TaskStatus.QUEUED

    processed = mesh.tasks.process(network.id, task.id)

    assert processed.id == task.id
    assert [(c.name, c.ref.task_id) for c in mesh.dispatcher.calls] == [("coordinate", task.id)]


def test_only_a_queued_task_can_be_processed(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    task = submit(mesh, network.id, auto_process=False)
    mesh.tasks.process(network.id, task.id)
    mesh.drain()

    with pytest.raises(Conflict, match="only a queued task can be processed"):
        mesh.tasks.process(network.id, task.id)

    assert mesh.tasks.get(network.id, task.id).status is TaskStatus.COMPLETED


def test_a_client_plan_with_a_cycle_is_rejected_and_nothing_is_stored(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    cyclic = [
        {"key": "a", "agent": "research", "description": "x", "depends_on": ["b"]},
        {"key": "b", "agent": "content", "description": "y", "depends_on": ["a"]},
    ]

    made = len(mesh.uow.made)

    with pytest.raises(InvalidPlan, match="cycle"):
        submit(mesh, network.id, plan=cyclic)

    assert not any(uow.committed for uow in mesh.uow.made[made:])

    assert mesh.tasks.list(network.id, Page()) == ([], 0)
    assert mesh.database.committed.tasks == {}
    assert mesh.dispatcher.calls == []


def test_a_client_plan_naming_a_missing_agent_is_rejected(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    design = next(a for a in network.agents if a.type == AgentType.DESIGN)
    mesh.networks.remove_agent(network.id, design.id)

    with pytest.raises(InvalidPlan, match="the network has no design agent"):
        submit(mesh, network.id, plan=[{"key": "look", "agent": "design", "description": "x"}])

    assert mesh.database.committed.tasks == {}


def test_a_client_plan_is_kept_with_the_task(mesh: FakeMesh) -> None:
    network = mesh.create_network()

    task = submit(mesh, network.id, plan=TWO_WAVES, auto_process=False)

    stored = mesh.tasks.get(network.id, task.id)
    assert stored.plan is not None
    assert [(s.key, s.agent_type, s.depends_on) for s in stored.plan] == [
        ("facts", AgentType.RESEARCH, ()),
        ("copy", AgentType.CONTENT, ("facts",)),
    ]


def test_an_empty_description_is_rejected_and_nothing_is_stored(mesh: FakeMesh) -> None:
    network = mesh.create_network()

    with pytest.raises(InvalidInput, match="description"):
        submit(mesh, network.id, description="   ")

    assert mesh.database.committed.tasks == {}
    assert mesh.dispatcher.calls == []


def test_a_network_without_a_coordinator_cannot_take_tasks(mesh: FakeMesh) -> None:
    # Such a network can no longer be made; one recorded before that rule can still exist.
    network = mesh.create_network()
    coordinator = next(a for a in network.agents if a.type == AgentType.COORDINATOR)
    del mesh.database.committed.agents[coordinator.id]

    with pytest.raises(Conflict, match="no coordinator"):
        submit(mesh, network.id)

    assert mesh.database.committed.tasks == {}


def test_tasks_of_another_tenant_are_not_found(mesh: FakeMesh) -> None:
    rival = mesh.for_tenant("globex")
    network = mesh.create_network()
    task = submit(mesh, network.id, auto_process=False)

    with pytest.raises(NotFound):
        submit(rival, network.id)
    # The network itself is invisible to another tenant, so that is what is not found.
    with pytest.raises(NotFound, match=f"network {network.id} not found"):
        rival.tasks.get(network.id, task.id)
    with pytest.raises(NotFound):
        rival.tasks.process(network.id, task.id)
    with pytest.raises(NotFound):
        rival.tasks.list(network.id, Page())
    assert mesh.dispatcher.calls == []


def test_a_task_is_found_only_under_its_own_network(mesh: FakeMesh) -> None:
    network, other = mesh.create_network(), mesh.create_network()
    task = submit(mesh, network.id)

    with pytest.raises(NotFound):
        mesh.tasks.get(other.id, task.id)
    with pytest.raises(NotFound):
        mesh.tasks.get(network.id, uuid4())


def test_tasks_are_listed_newest_first_and_filtered_by_status(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    held = submit(mesh, network.id, description="held", auto_process=False)
    mesh.clock.advance(1)
    run = submit(mesh, network.id, description="run")
    mesh.drain()
    mesh.clock.advance(1)
    newest = submit(mesh, network.id, description="newest", auto_process=False)

    everything, total = mesh.tasks.list(network.id, Page())
    queued, queued_total = mesh.tasks.list(network.id, Page(), TaskStatus.QUEUED)
    page, _ = mesh.tasks.list(network.id, Page(offset=1, limit=1))

    assert total == 3
    assert [t.id for t in everything] == [newest.id, run.id, held.id]
    assert (queued_total, [t.id for t in queued]) == (2, [newest.id, held.id])
    assert [t.id for t in page] == [run.id]


def test_a_task_read_back_shows_its_history_and_every_iterations_subtasks(
    mesh: FakeMesh,
) -> None:
    # The critic asks for one revision, then accepts: two iterations of the same plan.
    verdicts = ({"score": 0.2, "feedback": "Name the price."}, {"score": 0.95, "feedback": ""})
    mesh.models.script("Answer format: verdict_json", *(json.dumps(v) for v in verdicts))
    network = mesh.create_network(NetworkConfig(quality_threshold=0.9, max_iterations=3))
    task = submit(mesh, network.id, plan=TWO_WAVES)
    mesh.drain()

    done = mesh.tasks.get(network.id, task.id)

    assert (done.status, done.iteration) == (TaskStatus.COMPLETED, 2)
    assert [(s.iteration, s.wave, s.key) for s in done.subtasks] == [
        (1, 0, "facts"),
        (1, 1, "copy"),
        (2, 0, "facts"),
        (2, 1, "copy"),
    ]
    assert all(s.status == "completed" for s in done.subtasks)
    assert done.history[0].status is TaskStatus.QUEUED
    assert done.history[-1].status is TaskStatus.COMPLETED


def test_a_task_processed_twice_is_a_conflict_and_enqueued_once(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    task = submit(mesh, network.id, auto_process=False)
    mesh.tasks.process(network.id, task.id)

    with pytest.raises(Conflict, match="already released"):
        mesh.tasks.process(network.id, task.id)

    assert [(c.name, c.ref.task_id) for c in mesh.dispatcher.calls] == [("coordinate", task.id)]


def test_a_task_submitted_to_start_at_once_cannot_be_processed_again(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    task = submit(mesh, network.id)

    with pytest.raises(Conflict, match="only a task held with auto_process false"):
        mesh.tasks.process(network.id, task.id)

    assert mesh.dispatcher.names() == ["coordinate"]


class BrokerDown(Exception):
    """The broker refused the message."""


def test_a_task_whose_enqueue_failed_is_still_on_record_to_be_redriven() -> None:
    def refuse(call: Call) -> None:
        raise BrokerDown

    mesh = FakeMesh.build("acme", dispatcher=FakeDispatcher(on_call=refuse))
    network = mesh.create_network()

    with pytest.raises(BrokerDown):
        submit(mesh, network.id)

    (task,), total = mesh.tasks.list(network.id, Page())
    assert (total, task.status) == (1, TaskStatus.QUEUED)
