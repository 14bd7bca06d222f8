from __future__ import annotations

import json
from collections import Counter

import pytest

from meshcore.domain.agent_types import own_queue
from meshcore.domain.errors import ModelUnavailable, NotFound
from meshcore.domain.memory import MemoryQuery, MemoryType
from meshcore.domain.network import SPECIALISTS, AgentStatus, AgentType, NetworkConfig
from meshcore.domain.result import TaskResult
from meshcore.domain.task import Priority, Task, TaskStatus, Usage
from meshcore.ports import Delivery
from tests.fakes import (
    OFFLINE_LABEL as LABEL,
)
from tests.fakes import (
    Call,
    FakeClock,
    FakeDispatcher,
    FakeMesh,
    FakeTaskRepository,
)

PLAN = "Answer format: plan_json"
VERDICT = "Answer format: verdict_json"
SYNTHESIS = "Answer format: synthesis"
SPECIALIST_KEYS = sorted(t.value for t in SPECIALISTS)
TWO_WAVES: list[dict[str, object]] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "copy", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def verdict(score: float, feedback: str = "Make the call to action specific.") -> str:
    return json.dumps({"score": score, "feedback": feedback})


def run(
    mesh: FakeMesh,
    *,
    config: NetworkConfig | None = None,
    plan: list[dict[str, object]] | None = None,
    scores: tuple[float, ...] = (0.9,),
) -> Task:
    """Submit a task to a new default network, let the workers finish it, read it back."""
    mesh.models.script(VERDICT, *(verdict(s) for s in scores))
    network = mesh.create_network(config)
    task = mesh.tasks.submit(
        network.id,
        description="Write the launch email for Orbit",
        context={"segment": "trial users"},
        priority=Priority.NORMAL,
        plan=plan,
    )
    mesh.drain()
    return mesh.tasks.get(network.id, task.id)


def transitions(task: Task) -> list[TaskStatus]:
    return [e.status for e in task.history if e.kind == "transition"]


def steps_per_subtask(task: Task) -> Counter[tuple[object, object]]:
    return Counter(
        (e.detail["iteration"], e.detail["subtask"]) for e in task.history if e.kind == "step"
    )


def test_a_task_runs_through_every_specialist_to_a_reviewed_answer(mesh: FakeMesh) -> None:
    done = run(mesh, scores=(0.9,))

    assert done.status is TaskStatus.COMPLETED
    assert transitions(done) == [
        TaskStatus.QUEUED,
        TaskStatus.PLANNING,
        TaskStatus.RUNNING,
        TaskStatus.SYNTHESIZING,
        TaskStatus.REVIEWING,
        TaskStatus.COMPLETED,
    ]
    assert done.history[-1].detail["reason"] == "quality threshold met"
    assert done.error is None
    assert done.result is not None
    assert str(done.result.answer).startswith(f"{LABEL} Synthesis of 5 contribution(s)")
    assert (done.result.score, done.result.iteration) == (0.9, 1)
    contributions = done.result.contributions or ()
    assert sorted(c.subtask for c in contributions) == SPECIALIST_KEYS
    assert all(c.output.startswith(LABEL) for c in contributions)


def test_each_subtask_is_recorded_exactly_once(mesh: FakeMesh) -> None:
    done = run(mesh, scores=(0.9,))

    expected = {(1, k) for k in [*SPECIALIST_KEYS, "@plan", "@synthesis", "@review"]}
    assert steps_per_subtask(done) == Counter(expected)
    assert {key for key in mesh.database.committed.steps} == {(done.id, i, k) for i, k in expected}
    assert [s.status for s in done.subtasks] == ["completed"] * 5


def test_one_model_call_per_step_and_agents_are_idle_and_counted_after(mesh: FakeMesh) -> None:
    done = run(mesh, scores=(0.9,))

    assert len(mesh.models.calls) == 8  # plan, 5 specialists, synthesis, review
    agents = {a.type: a for a in mesh.networks.list_agents(done.network_id)}
    assert all(a.status is AgentStatus.IDLE for a in agents.values())
    assert agents[AgentType.COORDINATOR].metrics.calls == 2
    assert agents[AgentType.CRITIC].metrics.calls == 1
    assert all(agents[t].metrics.calls == 1 for t in SPECIALISTS)


def test_the_task_usage_is_the_sum_of_its_steps(mesh: FakeMesh) -> None:
    done = run(mesh, scores=(0.9,))

    recorded = [step for _, step in mesh.database.committed.steps.values()]
    total = sum((s.usage for s in recorded), Usage())
    assert done.usage == total
    assert total.input_tokens > 0


def test_a_low_score_sends_the_task_round_again_until_the_iteration_budget(
    mesh: FakeMesh,
) -> None:
    done = run(mesh, config=NetworkConfig(max_iterations=2), scores=(0.2, 0.3))

    assert done.status is TaskStatus.COMPLETED
    assert done.iteration == 2
    assert done.result is not None
    assert (done.result.score, done.result.iteration) == (0.3, 2)
    assert done.history[-1].detail["reason"] == "iteration budget spent"
    revision = next(e for e in done.history if e.detail.get("reason") == "revision")
    assert (revision.status, revision.detail["score"], revision.detail["iteration"]) == (
        TaskStatus.RUNNING,
        0.2,
        2,
    )
    assert len(mesh.models.calls_with(VERDICT)) == 2
    assert len(mesh.models.calls_with(PLAN)) == 2


def test_a_revision_is_planned_and_synthesised_with_the_critics_feedback(
    mesh: FakeMesh,
) -> None:
    mesh.models.script(VERDICT, verdict(0.2, "Mention the free trial."))
    run(mesh, config=NetworkConfig(max_iterations=2), scores=(0.95,))

    first_plan, second_plan = mesh.models.calls_with(PLAN)
    assert "Critic feedback" not in first_plan.user
    assert (
        'Critic feedback to address in this revision:\n<data source="critic">\n'
        "Mention the free trial.\n</data>"
    ) in second_plan.user
    synthesis = mesh.models.calls_with(SYNTHESIS)[-1]
    assert (
        'Address the critic\'s feedback:\n<data source="critic">\nMention the free trial.\n</data>'
    ) in synthesis.user


def test_a_revision_stops_as_soon_as_the_threshold_is_met(mesh: FakeMesh) -> None:
    done = run(mesh, config=NetworkConfig(max_iterations=5), scores=(0.5, 0.85))

    assert (done.status, done.iteration) == (TaskStatus.COMPLETED, 2)
    assert done.history[-1].detail["reason"] == "quality threshold met"
    assert len(mesh.models.calls_with(VERDICT)) == 2


def test_one_iteration_is_enough_when_the_first_score_meets_the_threshold(
    mesh: FakeMesh,
) -> None:
    done = run(mesh, config=NetworkConfig(quality_threshold=0.6), scores=(0.6,))

    assert (done.status, done.iteration) == (TaskStatus.COMPLETED, 1)
    assert transitions(done).count(TaskStatus.RUNNING) == 1


def test_a_client_plan_runs_in_waves_without_asking_for_a_plan(mesh: FakeMesh) -> None:
    done = run(mesh, plan=TWO_WAVES)

    assert done.status is TaskStatus.COMPLETED
    assert mesh.models.calls_with(PLAN) == []
    waves = [c for c in mesh.dispatcher.calls if c.name == "run_wave"]
    assert [(c.wave, [s.key for s in c.subtasks]) for c in waves] == [
        (0, ["facts"]),
        (1, ["copy"]),
    ]


def test_a_dependent_subtask_builds_on_its_dependencys_output(mesh: FakeMesh) -> None:
    mesh.models.script("Your subtask: Find the facts", "Orbit ships on 3 March at $9.")

    run(mesh, plan=TWO_WAVES)

    (copy,) = mesh.models.calls_with("Your subtask: Write it")
    assert copy.user.endswith(
        'Work you build on:\n<data source="agents">\n- [research] Orbit ships on 3 March at $9.\n'
        "</data>"
    )
    (facts,) = mesh.models.calls_with("Your subtask: Find the facts")
    assert "Work you build on" not in facts.user


def test_a_revision_builds_on_the_dependencys_output_of_the_same_iteration(
    mesh: FakeMesh,
) -> None:
    mesh.models.script("Your subtask: Find the facts", "facts v1", "facts v2")

    run(mesh, config=NetworkConfig(max_iterations=2), plan=TWO_WAVES, scores=(0.1, 0.1))

    first, second = mesh.models.calls_with("Your subtask: Write it")
    assert "- [research] facts v1" in first.user
    assert "- [research] facts v2" in second.user
    assert "- [research] facts v1" not in second.user


def test_a_redelivered_step_does_not_call_the_model_again() -> None:
    clock = FakeClock()
    mesh = FakeMesh.build(clock=clock, dispatcher=FakeDispatcher(clock=clock, step_deliveries=2))

    done = run(mesh, scores=(0.9,))

    assert done.status is TaskStatus.COMPLETED
    assert len(mesh.models.calls) == 8
    assert set(steps_per_subtask(done).values()) == {1}


def test_a_step_delivered_after_the_task_finished_returns_the_recorded_result(
    mesh: FakeMesh,
) -> None:
    done = run(mesh, scores=(0.9,))
    calls = len(mesh.models.calls)

    answer = mesh.coordination.run_step(done.id, 1, "research")

    assert answer == "completed"
    assert len(mesh.models.calls) == calls
    assert mesh.tasks.get(done.network_id, done.id).history == done.history


def test_messages_redelivered_after_the_task_finished_change_nothing(mesh: FakeMesh) -> None:
    done = run(mesh, scores=(0.9,))
    calls, sent = len(mesh.models.calls), len(mesh.dispatcher.calls)

    mesh.coordination.coordinate(done.id)
    mesh.coordination.collect(done.id, 1, 0)
    mesh.coordination.review(done.id, 1)
    mesh.coordination.expire(done.id)

    again = mesh.tasks.get(done.network_id, done.id)
    assert (again.status, again.result, again.history) == (done.status, done.result, done.history)
    assert (len(mesh.models.calls), len(mesh.dispatcher.calls)) == (calls, sent)


def submit_two_waves(mesh: FakeMesh, timeout_seconds: int = 60) -> Task:
    network = mesh.create_network(NetworkConfig(timeout_seconds=timeout_seconds))
    return mesh.tasks.submit(
        network.id,
        description="Write the launch email for Orbit",
        context={},
        priority=Priority.NORMAL,
        plan=TWO_WAVES,
    )


def test_a_task_past_its_deadline_times_out_keeping_what_it_has(mesh: FakeMesh) -> None:
    task = submit_two_waves(mesh, timeout_seconds=60)
    delivered = [mesh.dispatcher.deliver_next(mesh.coordination) for _ in range(2)]
    assert [c.name for c in delivered if c] == ["coordinate", "run_wave"]

    mesh.clock.advance(61)
    mesh.drain()

    ended = mesh.tasks.get(task.network_id, task.id)
    assert ended.status is TaskStatus.TIMED_OUT
    assert ended.error == "timed out after 60 s"
    assert ended.result is not None
    assert ended.result.partial is True
    assert [c.subtask for c in ended.result.contributions or ()] == ["facts"]
    assert mesh.models.calls_with("Your subtask: Write it") == []


def test_a_task_whose_messages_were_lost_times_out_at_its_deadline(mesh: FakeMesh) -> None:
    task = submit_two_waves(mesh, timeout_seconds=60)
    mesh.dispatcher.deliver_next(mesh.coordination)
    assert mesh.dispatcher.lose("run_wave") == 1

    assert mesh.drain() == 0  # the expire message is not due yet
    mesh.clock.advance(60)
    assert mesh.drain() == 1

    ended = mesh.tasks.get(task.network_id, task.id)
    assert ended.status is TaskStatus.TIMED_OUT
    assert ended.result == TaskResult(contributions=(), partial=True)


def test_a_task_still_queued_at_its_deadline_times_out_without_planning(mesh: FakeMesh) -> None:
    task = submit_two_waves(mesh, timeout_seconds=60)
    mesh.clock.advance(120)

    mesh.drain()

    ended = mesh.tasks.get(task.network_id, task.id)
    assert ended.status is TaskStatus.TIMED_OUT
    assert transitions(ended) == [TaskStatus.QUEUED, TaskStatus.TIMED_OUT]
    assert mesh.models.calls == []


def test_a_step_whose_models_are_unavailable_fails_the_task_naming_the_subtask(
    mesh: FakeMesh,
) -> None:
    down = ModelUnavailable("every model in the chain failed")
    mesh.models.script("Your subtask: Write it", down)

    done = run(mesh, plan=TWO_WAVES)

    assert done.status is TaskStatus.FAILED
    assert done.error == "subtask copy failed: every model in the chain failed"
    assert done.history[-1].detail["reason"] == done.error
    assert done.result is not None
    assert done.result.partial is True
    assert [c.subtask for c in done.result.contributions or ()] == ["facts"]
    assert mesh.models.calls_with(SYNTHESIS) == []
    agents = mesh.networks.list_agents(done.network_id)
    assert all(a.metrics.in_flight == 0 for a in agents)


def test_a_failed_step_in_a_wide_wave_keeps_the_others_contributions(mesh: FakeMesh) -> None:
    mesh.models.script("Your subtask: The research angle", ModelUnavailable("provider down"))

    done = run(mesh)

    assert done.status is TaskStatus.FAILED
    assert done.error == "subtask research failed: provider down"
    assert done.result is not None
    assert sorted(c.subtask for c in done.result.contributions or ()) == [
        k for k in SPECIALIST_KEYS if k != "research"
    ]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (ModelUnavailable("no model answered"), "no model answered"),
        ("I would rather not", "the coordinator's plan is not JSON"),
        (
            '{"subtasks": [{"key": "x", "agent": "wizard", "description": "magic"}]}',
            "the network has no wizard agent",
        ),
        ('{"subtasks": []}', "a plan needs at least one subtask"),
    ],
)
def test_a_plan_that_cannot_be_had_fails_the_task(
    mesh: FakeMesh, answer: str | ModelUnavailable, reason: str
) -> None:
    mesh.models.script(PLAN, answer)

    done = run(mesh)

    assert done.status is TaskStatus.FAILED
    assert str(done.error).startswith("planning failed: ")
    assert reason in str(done.error)
    assert len(mesh.models.calls) == 1


def test_an_unavailable_synthesis_fails_the_task_keeping_the_contributions(
    mesh: FakeMesh,
) -> None:
    mesh.models.script(SYNTHESIS, ModelUnavailable("synthesis model down"))

    done = run(mesh)

    assert done.status is TaskStatus.FAILED
    assert done.error == "synthesis failed: synthesis model down"
    assert done.result is not None
    assert len(done.result.contributions or ()) == 5


def test_a_verdict_that_is_not_a_score_fails_the_review(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, '{"score": "excellent"}')

    done = run(mesh, scores=())

    assert done.status is TaskStatus.FAILED
    assert done.error.startswith("review failed: ")
    assert "the critic's score must be a number between 0 and 1" in done.error
    assert done.result is not None
    assert str(done.result.answer).startswith(LABEL)
    critic = next(a for a in mesh.networks.list_agents(done.network_id) if a.type.value == "critic")
    assert (critic.metrics.calls, critic.metrics.failures) == (1, 1)


def test_the_team_writes_its_work_to_shared_memory(mesh: FakeMesh) -> None:
    done = run(mesh, scores=(0.9,))

    items = mesh.store.query("acme", done.network_id, MemoryQuery(task_id=done.id, limit=50))
    by_subtask = {i.subtask: i for i in items}
    assert set(by_subtask) == {*SPECIALIST_KEYS, "@synthesis", "@review"}
    assert by_subtask["research"].type is MemoryType.FACT
    assert by_subtask["research"].metadata["iteration"] == 1
    assert by_subtask["@review"].type is MemoryType.FEEDBACK
    assert by_subtask["@review"].content == "Make the call to action specific."
    assert {i.id for i in items} == set(mesh.database.committed.memory)


def test_another_tenant_cannot_drive_a_task(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    task = mesh.tasks.submit(network.id, description="launch", context={}, priority=Priority.NORMAL)
    rival = mesh.for_tenant("globex")

    with pytest.raises(NotFound):
        rival.coordination.coordinate(task.id)

    assert mesh.tasks.get(network.id, task.id).status is TaskStatus.QUEUED


def test_a_task_of_many_waves_runs_each_wave_after_the_last(mesh: FakeMesh) -> None:
    plan: list[dict[str, object]] = [
        {"key": "facts", "agent": "research", "description": "Facts"},
        {"key": "who", "agent": "personalization", "description": "Who", "depends_on": ["facts"]},
        {"key": "copy", "agent": "content", "description": "Copy", "depends_on": ["who"]},
        {"key": "look", "agent": "design", "description": "Look", "depends_on": ["copy"]},
    ]

    done = run(mesh, plan=plan)

    assert done.status is TaskStatus.COMPLETED
    asked = [c.user.splitlines()[1] for c in mesh.models.calls_with("Your subtask")]
    assert asked == [f"Your subtask: {s}" for s in ("Facts", "Who", "Copy", "Look")]
    assert [s.wave for s in done.subtasks] == [0, 1, 2, 3]


def test_a_coordinate_message_delivered_twice_runs_the_task_once(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, verdict(0.9))
    network = mesh.create_network()
    task = mesh.tasks.submit(
        network.id, description="Launch Orbit", context={}, priority=Priority.NORMAL
    )
    mesh.coordination.coordinate(task.id)
    mesh.coordination.coordinate(task.id)

    mesh.drain()

    done = mesh.tasks.get(network.id, task.id)
    assert done.status is TaskStatus.COMPLETED
    assert len(mesh.models.calls) == 8
    assert set(steps_per_subtask(done).values()) == {1}
    assert transitions(done).count(TaskStatus.COMPLETED) == 1


class WorkerLost(Exception):
    """The worker died mid-message; the broker will deliver the message again."""


def test_a_plan_recorded_before_the_worker_died_is_not_asked_for_again(
    mesh: FakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = mesh.create_network()
    task = mesh.tasks.submit(
        network.id, description="Launch Orbit", context={}, priority=Priority.NORMAL
    )

    def die(*args: object, **kwargs: object) -> None:
        raise WorkerLost

    monkeypatch.setattr(FakeTaskRepository, "add_plan", die)
    with pytest.raises(WorkerLost):
        mesh.coordination.coordinate(task.id)
    monkeypatch.undo()
    assert mesh.database.committed.steps.get((task.id, 1, "@plan")) is not None

    mesh.coordination.coordinate(task.id)

    assert mesh.tasks.get(network.id, task.id).status is TaskStatus.RUNNING
    assert len(mesh.models.calls_with(PLAN)) == 1


def take(mesh: FakeMesh, name: str) -> Call:
    call = next(c for c in mesh.dispatcher.pending if c.name == name)
    mesh.dispatcher.pending.remove(call)
    return call


def test_the_plan_synthesis_and_review_record_the_worker_that_ran_them(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, verdict(0.9))
    network = mesh.create_network()
    task = mesh.tasks.submit(
        network.id, description="Write the launch email", context={}, priority=Priority.NORMAL
    )
    at_coordinator = Delivery(queue="coordinator", worker="coordinator@host")

    take(mesh, "coordinate")
    mesh.coordination.coordinate(task.id, at_coordinator)
    wave = take(mesh, "run_wave")
    for subtask in wave.subtasks:
        delivery = Delivery(queue=own_queue(subtask.agent_type), worker="agents1@host")
        mesh.coordination.run_step(task.id, 1, subtask.key, delivery)
    mesh.coordination.collect(task.id, 1, 0, at_coordinator)
    take(mesh, "review")
    mesh.coordination.review(task.id, 1, Delivery(queue="agent.critic", worker="critic@host"))

    done = mesh.tasks.get(network.id, task.id)
    assert done.status is TaskStatus.COMPLETED
    workers = {e.detail["subtask"]: e.detail["worker"] for e in done.history if e.kind == "step"}
    assert workers.pop("@plan") == workers.pop("@synthesis") == "coordinator@host"
    assert workers.pop("@review") == "critic@host"
    assert set(workers.values()) == {"agents1@host"}
