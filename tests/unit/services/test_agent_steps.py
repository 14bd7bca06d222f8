from __future__ import annotations

from datetime import timedelta

import pytest

from meshcore.agents import PROFILES
from meshcore.domain.errors import ModelUnavailable
from meshcore.domain.memory import MemoryQuery, MemoryType
from meshcore.domain.network import AgentStatus, AgentType, ModelConfig, Network, NetworkConfig
from meshcore.domain.task import Priority, StepRecord, StepStatus, Task, TaskStatus
from meshcore.ports import Delivery, Message
from meshcore.services.networks import AgentSpec
from meshcore.services.step_log import Skipped
from tests.fakes import FAKE_MODEL, FakeMesh, FakeModelClient

PLAN: list[dict[str, object]] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "copy", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
    {"key": "look", "agent": "design", "description": "Lay it out", "depends_on": ["copy"]},
]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def started(mesh: FakeMesh, network: Network | None = None) -> Task:
    """A task planned and running, its first wave sent but not yet delivered."""
    network = network or mesh.create_network()
    task = mesh.tasks.submit(
        network.id, description="Launch Orbit", context={}, priority=Priority.NORMAL, plan=PLAN
    )
    assert mesh.dispatcher.deliver_next(mesh.coordination) is not None
    running = mesh.tasks.get(network.id, task.id)
    assert running.status is TaskStatus.RUNNING
    return running


def step_entries(mesh: FakeMesh, task: Task, key: str) -> list[dict[str, object]]:
    history = mesh.tasks.get(task.network_id, task.id).history
    return [e.detail for e in history if e.kind == "step" and e.detail["subtask"] == key]


def agent_calls(mesh: FakeMesh, task: Task, agent_type: AgentType) -> tuple[int, int]:
    agent = next(a for a in mesh.networks.list_agents(task.network_id) if a.type is agent_type)
    return agent.metrics.calls, agent.metrics.failures


def test_a_step_runs_once_and_a_replay_returns_the_recorded_result(mesh: FakeMesh) -> None:
    task = started(mesh)

    first = mesh.steps.run_subtask(task.id, 1, "facts")
    again = mesh.steps.run_subtask(task.id, 1, "facts")

    assert first is not None
    assert (first.status, first.model) == (StepStatus.COMPLETED, FAKE_MODEL)
    assert again == first
    assert len(mesh.models.calls_with("Your subtask: Find the facts")) == 1
    assert len(step_entries(mesh, task, "facts")) == 1
    assert agent_calls(mesh, task, AgentType.RESEARCH) == (1, 0)


def test_the_first_recorded_result_wins_and_the_second_leaves_no_trace(mesh: FakeMesh) -> None:
    task = started(mesh)
    network = mesh.networks.get(task.network_id)
    mesh.models.script("Find the facts", "first answer", "second answer")
    messages = [Message("system", "Answer format: draft"), Message("user", "Find the facts")]
    first = mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)
    mesh.clock.advance(91)  # past the lease: the first attempt is presumed dead
    second = mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)
    racing: list[StepRecord] = [first, second]

    stored = [
        mesh.steps.record(
            s, network.id, mesh.steps.memory_item(task, network, s, PROFILES["research"])
        )
        for s in racing
    ]

    assert [s.output for s in stored] == ["first answer", "first answer"]
    after = mesh.tasks.get(task.network_id, task.id)
    assert after.usage == racing[0].usage  # a client's plan step costs nothing
    assert len(step_entries(mesh, task, "facts")) == 1
    assert [m.content for m in mesh.database.committed.memory.values()] == ["first answer"]
    shared = mesh.store.query("acme", network.id, MemoryQuery(task_id=task.id))
    assert [m.content for m in shared] == ["first answer"]
    assert agent_calls(mesh, task, AgentType.RESEARCH) == (1, 0)


def test_a_duplicate_within_the_lease_makes_no_model_call(mesh: FakeMesh) -> None:
    task = started(mesh)
    network = mesh.networks.get(task.network_id)
    messages = [Message("system", "Answer format: draft"), Message("user", "Find the facts")]

    first = mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)
    duplicate = mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)

    assert isinstance(first, StepRecord) and duplicate is Skipped.LEASED_ELSEWHERE
    assert len(mesh.models.calls_with("Find the facts")) == 1


def test_a_step_that_keeps_dying_gives_up_after_its_attempts(mesh: FakeMesh) -> None:
    task = started(mesh)
    network = mesh.networks.get(task.network_id)
    messages = [Message("system", "Answer format: draft"), Message("user", "Find the facts")]
    for _ in range(5):  # each attempt "dies": never recorded, its lease runs out
        mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)
        mesh.clock.advance(91)

    last = mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)

    assert last.status is StepStatus.FAILED
    assert last.error == "gave up after 5 attempts that never finished"
    assert len(mesh.models.calls_with("Find the facts")) == 5


def test_a_step_of_a_task_past_its_deadline_is_skipped(mesh: FakeMesh) -> None:
    task = started(mesh)
    mesh.clock.advance(NetworkConfig().timeout_seconds)

    assert mesh.steps.run_subtask(task.id, 1, "facts") is Skipped.TASK_ENDED
    assert mesh.coordination.run_step(task.id, 1, "facts") == "skipped"

    assert mesh.models.calls == []
    assert mesh.database.committed.steps.get((task.id, 1, "facts")) is None


def test_a_step_of_a_finished_task_is_skipped(mesh: FakeMesh) -> None:
    task = started(mesh)
    mesh.models.script("Find the facts", ModelUnavailable("provider down"))
    mesh.drain()
    assert mesh.tasks.get(task.network_id, task.id).status is TaskStatus.FAILED
    calls = len(mesh.models.calls)

    assert mesh.steps.run_subtask(task.id, 1, "copy") is Skipped.TASK_ENDED
    assert len(mesh.models.calls) == calls


def test_a_step_for_an_agent_the_network_no_longer_has_fails_without_a_call(
    mesh: FakeMesh,
) -> None:
    task = started(mesh)
    agents = mesh.networks.list_agents(task.network_id)
    design = next(a for a in agents if a.type == AgentType.DESIGN)
    mesh.networks.remove_agent(task.network_id, design.id)

    step = mesh.steps.run_subtask(task.id, 1, "look")

    assert step is not None
    assert (step.status, step.error) == (
        StepStatus.FAILED,
        "the network has no enabled design agent",
    )
    assert mesh.models.calls == []


def test_a_step_whose_models_are_unavailable_is_recorded_as_failed(mesh: FakeMesh) -> None:
    task = started(mesh)
    mesh.models.script("Find the facts", ModelUnavailable("anthropic: Timeout; openai: 429"))

    step = mesh.steps.run_subtask(task.id, 1, "facts")

    assert step is not None
    assert (step.status, step.error, step.output) == (
        StepStatus.FAILED,
        "anthropic: Timeout; openai: 429",
        "",
    )
    assert step_entries(mesh, task, "facts")[0]["status"] == "failed"
    assert mesh.database.committed.memory == {}
    agents = mesh.networks.list_agents(task.network_id)
    assert all(a.metrics.in_flight == 0 for a in agents)


def test_a_step_whose_models_are_unavailable_counts_as_a_failure_of_its_agent(
    mesh: FakeMesh,
) -> None:
    task = started(mesh)
    mesh.models.script("Find the facts", ModelUnavailable("every model failed"))

    mesh.steps.run_subtask(task.id, 1, "facts")

    assert agent_calls(mesh, task, AgentType.RESEARCH) == (1, 1)


def test_an_agents_own_model_chain_wins_over_the_networks(mesh: FakeMesh) -> None:
    network = mesh.networks.create(
        name="chains",
        description="",
        config=NetworkConfig(model_chain=("network-model",)),
        agents=[
            AgentSpec(AgentType.COORDINATOR),
            AgentSpec(AgentType.RESEARCH, model=ModelConfig(chain=("research-model",))),
            AgentSpec(AgentType.CONTENT),
            AgentSpec(AgentType.DESIGN),
            AgentSpec(AgentType.CRITIC),
        ],
    )
    task = started(mesh, network)

    mesh.steps.run_subtask(task.id, 1, "facts")
    mesh.steps.run_subtask(task.id, 1, "copy")

    (facts,) = mesh.models.calls_with("Your subtask: Find the facts")
    (copy,) = mesh.models.calls_with("Your subtask: Write it")
    assert facts.chain == ("research-model",)
    assert copy.chain == ("network-model",)


def test_a_model_call_may_take_only_the_time_the_task_has_left(mesh: FakeMesh) -> None:
    task = started(mesh)

    mesh.clock.advance(100)
    mesh.steps.run_subtask(task.id, 1, "facts")
    mesh.clock.advance(199.5)
    mesh.steps.run_subtask(task.id, 1, "copy")

    assert [c.timeout_s for c in mesh.models.calls] == [200.0, 1.0]


def test_a_step_reads_the_shared_memory_its_agent_cares_about(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    sure = mesh.memory.add(
        network.id, type=MemoryType.FACT, content="Orbit costs $9 a month", confidence=0.9
    )
    mesh.memory.add(network.id, type=MemoryType.FACT, content="Orbit is free", confidence=0.3)
    mesh.memory.add(network.id, type=MemoryType.FEEDBACK, content="Too long", confidence=0.9)
    task = started(mesh, network)

    step = mesh.steps.run_subtask(task.id, 1, "facts")

    (call,) = mesh.models.calls
    assert (
        'Shared memory:\n<data source="memory">\n- (fact, 0.90) Orbit costs $9 a month\n</data>'
        in call.user
    )
    assert "Orbit is free" not in call.user
    assert "Too long" not in call.user
    assert step is not None
    assert step.memory_read == (str(sure.id),)


def test_a_step_records_where_the_broker_delivered_it(mesh: FakeMesh) -> None:
    task = started(mesh)

    step = mesh.steps.run_subtask(
        task.id, 1, "facts", Delivery(queue="agent.research", worker="celery@research-7")
    )

    assert step is not None
    assert (step.queue, step.worker) == ("agent.research", "celery@research-7")
    (entry,) = step_entries(mesh, task, "facts")
    assert entry["worker"] == "celery@research-7"


def test_a_completed_step_is_remembered_for_the_steps_that_follow(mesh: FakeMesh) -> None:
    task = started(mesh)
    mesh.clock.advance(1)

    step = mesh.steps.run_subtask(task.id, 1, "facts")

    (item,) = mesh.store.for_subtasks("acme", task.network_id, task.id, ["facts"])
    assert step is not None
    assert (item.type, item.content, item.confidence) == (MemoryType.FACT, step.output, 0.8)
    assert item.metadata["task_id"] == str(task.id)
    assert item.metadata["iteration"] == 1
    assert item.created_at == task.created_at + timedelta(seconds=1)


def test_an_agent_is_busy_while_its_model_answers_and_idle_after() -> None:
    seen: list[AgentStatus] = []
    mesh = FakeMesh.build("acme", models=FakeModelClient(on_call=lambda _: seen.append(status())))
    task = started(mesh)

    def status() -> AgentStatus:
        agents = mesh.networks.list_agents(task.network_id)
        return next(a for a in agents if a.type == AgentType.RESEARCH).status

    mesh.steps.run_subtask(task.id, 1, "facts")

    assert seen == [AgentStatus.BUSY]
    assert status() is AgentStatus.IDLE


@pytest.mark.parametrize("waited_s", [1, 60])
def test_a_task_shows_alive_while_a_step_that_began_late_calls_its_model(waited_s: int) -> None:
    beats: list[object] = []
    mesh = FakeMesh.build("acme", models=FakeModelClient(on_call=lambda _: beats.append(beat())))
    task = started(mesh)

    def beat() -> object:
        return mesh.tasks.get(task.network_id, task.id).heartbeat_at

    mesh.clock.advance(waited_s)  # the step waited this long in its queue
    mesh.steps.run_subtask(task.id, 1, "facts")

    # A step that begins right after the task's last heartbeat leaves it; a late one renews it,
    # so the sweeper never takes a task whose step is calling its model for stalled.
    (during,) = beats
    assert mesh.clock.now() - during <= timedelta(seconds=5)


def test_a_draft_says_it_drew_on_every_memory_item_the_step_records_as_read(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    # Earlier answers in shared memory run over several lines, as every draft does.
    for n in range(4):
        mesh.memory.add(
            network.id,
            type=MemoryType.FACT,
            content=f"Finding {n}\nBuilding on: the brief\nDrew on 0 shared memory item(s).",
            confidence=0.9,
        )
    task = started(mesh, network)
    mesh.steps.run_subtask(task.id, 1, "facts")  # a multi-line draft the next step builds on

    step = mesh.steps.run_subtask(task.id, 1, "copy")

    assert step is not None
    assert len(step.memory_read) == 5  # the facts draft it builds on, and four shared items
    assert f"Drew on {len(step.memory_read)} shared memory item(s)" in step.output
