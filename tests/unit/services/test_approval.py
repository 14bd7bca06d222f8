"""A network that asks for approval: each iteration's plan waits, holding no worker, until a
person approves it (as it is, or edited), rejects it, or its approval timeout passes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from meshcore.domain.errors import Conflict, InvalidInput, InvalidPlan
from meshcore.domain.network import Approval, NetworkConfig
from meshcore.domain.task import EventKind, Priority, Task, TaskStatus
from meshcore.services.planning import Planner
from meshcore.services.recovery import Sweeper
from tests.fakes import FakeMesh

VERDICT = "Answer format: verdict_json"
TWO_WAVES: list[dict[str, object]] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "copy", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
]
EDITED: list[dict[str, object]] = [
    {"key": "numbers", "agent": "analytics", "description": "Size the trial segment"},
    {"key": "layout", "agent": "design", "description": "Lay the email out"},
    {
        "key": "email",
        "agent": "content",
        "description": "Write it from the numbers",
        "depends_on": ["numbers", "layout"],
    },
]
APPROVING = NetworkConfig(approval=Approval(plan=True, timeout_seconds=600))
STALL = 30.0


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def verdict(score: float) -> str:
    return json.dumps({"score": score, "feedback": "Name the price."})


def waiting(
    mesh: FakeMesh,
    *,
    config: NetworkConfig = APPROVING,
    plan: list[dict[str, object]] | None = TWO_WAVES,
) -> Task:
    """A task of a network that asks for approval, planned and left waiting."""
    network = mesh.create_network(config)
    task = mesh.tasks.submit(
        network.id,
        description="Write the launch email for Orbit",
        context={},
        priority=Priority.NORMAL,
        plan=plan,
    )
    mesh.drain()
    return read(mesh, task)


def read(mesh: FakeMesh, task: Task) -> Task:
    return mesh.tasks.get(task.network_id, task.id)


def transitions(task: Task) -> list[TaskStatus]:
    return [e.status for e in task.history if e.kind == EventKind.TRANSITION]


def steps_run(task: Task) -> list[tuple[object, object]]:
    """(iteration, key) of each specialist step recorded, in order."""
    return [
        (e.detail["iteration"], e.detail["subtask"])
        for e in task.history
        if e.kind == EventKind.STEP and not str(e.detail["subtask"]).startswith("@")
    ]


def dispatched(mesh: FakeMesh) -> list[str]:
    """What was sent to the workers besides expiries."""
    return [c.name for c in mesh.dispatcher.calls if c.name != "expire"]


def test_a_planned_task_waits_for_approval_with_nothing_dispatched(mesh: FakeMesh) -> None:
    task = waiting(mesh)

    assert task.status is TaskStatus.AWAITING_APPROVAL
    assert transitions(task) == [
        TaskStatus.QUEUED,
        TaskStatus.PLANNING,
        TaskStatus.AWAITING_APPROVAL,
    ]
    assert dispatched(mesh) == ["coordinate"]  # only the message that planned it
    assert not mesh.dispatcher.pending or all(c.name == "expire" for c in mesh.dispatcher.pending)
    assert steps_run(task) == []
    assert [s.key for s in task.subtasks] == ["facts", "copy"]
    # The plan is on the task, in its log and in the event that says it waits.
    entry = task.history[-1]
    assert entry.type == "task.awaiting_approval"
    assert entry.detail["subtasks"] == [
        {
            "key": "facts",
            "agent": "research",
            "agent_version": 1,
            "description": "Find the facts",
            "depends_on": [],
            "wave": 0,
        },
        {
            "key": "copy",
            "agent": "content",
            "agent_version": 1,
            "description": "Write it",
            "depends_on": ["facts"],
            "wave": 1,
        },
    ]
    # Its deadline is the approval's, and its expiry is scheduled for then.
    assert task.deadline_at == entry.at + timedelta(seconds=600)
    assert mesh.dispatcher.calls[-1].name == "expire"
    assert mesh.dispatcher.calls[-1].at == task.deadline_at


def test_a_network_without_approval_runs_its_plan_at_once(mesh: FakeMesh) -> None:
    task = waiting(mesh, config=NetworkConfig(quality_threshold=0.0))

    assert task.status is TaskStatus.COMPLETED
    assert TaskStatus.AWAITING_APPROVAL not in transitions(task)


def test_an_approved_plan_runs_to_the_end(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, verdict(0.9))
    task = waiting(mesh)
    mesh.clock.advance(120)

    approved = mesh.tasks.approve(task.network_id, task.id)
    assert approved.status is TaskStatus.RUNNING
    assert approved.deadline_at == mesh.clock.now() + timedelta(seconds=300)
    mesh.drain()

    done = read(mesh, task)
    assert done.status is TaskStatus.COMPLETED
    assert steps_run(done) == [(1, "facts"), (1, "copy")]
    assert transitions(done)[2:4] == [TaskStatus.AWAITING_APPROVAL, TaskStatus.RUNNING]
    approval = next(e for e in done.history if e.detail.get("reason") == "plan approved")
    assert approval.detail["edited"] is False


def test_an_edited_plan_runs_as_edited(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, verdict(0.9))
    task = waiting(mesh)

    approved = mesh.tasks.approve(task.network_id, task.id, EDITED)
    assert [(s.key, s.wave) for s in approved.subtasks] == [
        ("numbers", 0),
        ("layout", 0),
        ("email", 1),
    ]
    mesh.drain()

    done = read(mesh, task)
    assert done.status is TaskStatus.COMPLETED
    assert sorted(key for _, key in steps_run(done)) == ["email", "layout", "numbers"]
    waves = [c for c in mesh.dispatcher.calls if c.name == "run_wave"]
    assert [[s.key for s in c.subtasks] for c in waves] == [["numbers", "layout"], ["email"]]
    (copy,) = mesh.models.calls_with("Your subtask: Write it from the numbers")
    assert copy  # the edited description is what the agent was given
    assert mesh.models.calls_with("Your subtask: Find the facts") == []
    # The edit is in the log: a second plan of the same iteration, after the first.
    plans = [e for e in done.history if e.kind == EventKind.PLAN]
    assert [[s["key"] for s in p.detail["subtasks"]] for p in plans] == [
        ["facts", "copy"],
        ["numbers", "layout", "email"],
    ]
    approval = next(e for e in done.history if e.detail.get("reason") == "plan approved")
    assert approval.detail["edited"] is True


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        ([{"key": "x", "agent": "legal", "description": "Check it"}], "plan"),
        ([{"key": "x", "agent": "content", "description": "Loop", "depends_on": ["x"]}], "plan"),
        ([{"key": "Bad Key", "agent": "content", "description": "Write"}], "plan.0.key"),
        ([{"key": "x", "agent": "critic", "description": "Review"}], "plan"),
        ([], "plan"),
    ],
)
def test_a_bad_edited_plan_is_refused_and_changes_nothing(
    mesh: FakeMesh, plan: list[dict[str, object]], field: str
) -> None:
    task = waiting(mesh)
    before = (read(mesh, task), len(mesh.dispatcher.calls))

    with pytest.raises(InvalidPlan) as refused:
        mesh.tasks.approve(task.network_id, task.id, plan)

    assert refused.value.field == field
    after = read(mesh, task)
    assert after.status is TaskStatus.AWAITING_APPROVAL
    assert (after.revision, after.subtasks, after.deadline_at) == (
        before[0].revision,
        before[0].subtasks,
        before[0].deadline_at,
    )
    assert len(mesh.dispatcher.calls) == before[1]


def test_a_rejected_plan_ends_the_task_cancelled_with_the_reason(mesh: FakeMesh) -> None:
    task = waiting(mesh)

    rejected = mesh.tasks.reject(task.network_id, task.id, "Research pricing first")
    mesh.drain()

    done = read(mesh, task)
    assert rejected.status is done.status is TaskStatus.CANCELLED
    assert done.error == "plan rejected: Research pricing first"
    assert done.history[-1].type == "task.cancelled"
    assert steps_run(done) == []
    assert dispatched(mesh) == ["coordinate"]


def test_a_blank_reason_is_refused(mesh: FakeMesh) -> None:
    task = waiting(mesh)

    with pytest.raises(InvalidInput):
        mesh.tasks.reject(task.network_id, task.id, "   ")

    assert read(mesh, task).status is TaskStatus.AWAITING_APPROVAL


def test_cancel_ends_a_waiting_task(mesh: FakeMesh) -> None:
    task = waiting(mesh)

    assert mesh.tasks.cancel(task.network_id, task.id).status is TaskStatus.CANCELLED


def test_a_plan_no_one_approves_in_time_times_out(mesh: FakeMesh) -> None:
    config = NetworkConfig(approval=Approval(plan=True, timeout_seconds=2))
    task = waiting(mesh, config=config)

    mesh.clock.advance(1)
    mesh.drain()
    assert read(mesh, task).status is TaskStatus.AWAITING_APPROVAL
    mesh.clock.advance(1.5)
    mesh.drain()

    done = read(mesh, task)
    assert done.status is TaskStatus.TIMED_OUT
    assert done.error == "timed out: no one approved the plan within 2 s"
    assert steps_run(done) == []


def test_an_approval_timeout_longer_than_the_task_timeout_holds(mesh: FakeMesh) -> None:
    config = NetworkConfig(timeout_seconds=60, approval=Approval(plan=True, timeout_seconds=3600))
    task = waiting(mesh, config=config)

    mesh.clock.advance(600)  # past the task's own timeout, not past the approval's
    mesh.drain()

    assert read(mesh, task).status is TaskStatus.AWAITING_APPROVAL
    mesh.tasks.approve(task.network_id, task.id)
    mesh.drain()
    assert read(mesh, task).status is TaskStatus.COMPLETED


def test_each_revision_waits_for_approval_again(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, verdict(0.2), verdict(0.95))
    config = NetworkConfig(max_iterations=2, approval=Approval(plan=True))
    task = waiting(mesh, config=config, plan=None)

    mesh.tasks.approve(task.network_id, task.id)
    mesh.drain()
    revised = read(mesh, task)
    assert (revised.status, revised.iteration) == (TaskStatus.AWAITING_APPROVAL, 2)
    assert {i for i, _ in steps_run(revised)} == {1}
    assert revised.history[-1].detail["iteration"] == 2
    # A duplicate of the message that planned it changes nothing.
    mesh.coordination.coordinate(task.id)
    assert read(mesh, task).revision == revised.revision

    mesh.tasks.approve(task.network_id, task.id, [TWO_WAVES[0]])
    mesh.drain()
    done = read(mesh, task)
    assert (done.status, done.iteration) == (TaskStatus.COMPLETED, 2)
    assert [k for i, k in steps_run(done) if i == 2] == ["facts"]
    assert transitions(done).count(TaskStatus.AWAITING_APPROVAL) == 2


def test_a_duplicate_coordinate_after_approval_runs_the_wave_once(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, verdict(0.9))
    task = waiting(mesh)
    mesh.tasks.approve(task.network_id, task.id)

    mesh.coordination.coordinate(task.id)  # a redelivery of the approval's message
    mesh.drain()

    done = read(mesh, task)
    assert done.status is TaskStatus.COMPLETED
    assert steps_run(done) == [(1, "facts"), (1, "copy")]


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_only_a_task_awaiting_approval_can_be_approved_or_rejected(
    mesh: FakeMesh, action: str
) -> None:
    network = mesh.create_network(APPROVING)
    held = mesh.tasks.submit(
        network.id, description="Launch", context={}, priority=Priority.NORMAL, auto_process=False
    )
    args = () if action == "approve" else ("no",)

    with pytest.raises(Conflict, match="only a task awaiting approval"):
        getattr(mesh.tasks, action)(network.id, held.id, *args)

    task = waiting(mesh)
    mesh.tasks.approve(task.network_id, task.id)
    with pytest.raises(Conflict, match="is running"):
        getattr(mesh.tasks, action)(task.network_id, task.id, *args)
    mesh.tasks.cancel(task.network_id, task.id)
    with pytest.raises(Conflict, match="is cancelled"):
        getattr(mesh.tasks, action)(task.network_id, task.id, *args)


def test_another_tenant_cannot_approve_or_reject(mesh: FakeMesh) -> None:
    from meshcore.domain.errors import NotFound

    task = waiting(mesh)
    other = mesh.for_tenant("globex")

    with pytest.raises(NotFound):
        other.tasks.approve(task.network_id, task.id)
    with pytest.raises(NotFound):
        other.tasks.reject(task.network_id, task.id, "mine now")
    assert read(mesh, task).status is TaskStatus.AWAITING_APPROVAL


def test_the_sweeper_leaves_a_waiting_task_alone_until_its_deadline(mesh: FakeMesh) -> None:
    sweeper = Sweeper(
        finder=mesh.uow,
        coordination=lambda t: mesh.for_tenant(t).coordination,
        clock=mesh.clock,
        stall_seconds=STALL,
    )
    task = waiting(mesh)
    mesh.dispatcher.lose("expire")  # its expiry lost with the broker's data

    mesh.clock.advance(STALL * 10)
    assert sweeper.sweep() == {}
    waited = read(mesh, task)
    assert waited.status is TaskStatus.AWAITING_APPROVAL
    assert [e for e in waited.history if e.kind == EventKind.RECOVERY] == []
    assert waited.revision == task.revision

    mesh.clock.advance(600)
    assert sweeper.sweep() == {"timed out": 1}
    assert read(mesh, task).status is TaskStatus.TIMED_OUT


def test_a_revision_plan_stored_before_its_worker_died_is_put_to_a_person(
    mesh: FakeMesh,
) -> None:
    """The sweeper re-drives it to wait for approval, not to run unapproved."""
    mesh.models.script(VERDICT, verdict(0.2), verdict(0.95))
    config = NetworkConfig(max_iterations=2, approval=Approval(plan=True))
    task = waiting(mesh, config=config)
    mesh.tasks.approve(task.network_id, task.id)
    # Run up to the revision's coordinate, then plan it without moving it on (a worker that
    # died after storing the plan).
    while (call := mesh.dispatcher.deliver_next(mesh.coordination)) and call.name != "review":
        pass
    revision = next(c for c in mesh.dispatcher.pending if c.name == "coordinate")
    mesh.dispatcher.pending.remove(revision)
    running = read(mesh, task)
    assert (running.status, running.iteration) == (TaskStatus.RUNNING, 2)
    network = mesh.networks.get(task.network_id)
    planner = Planner(tenant_id=mesh.tenant_id, uow=mesh.uow, steps=mesh.steps, clock=mesh.clock)
    assert planner.plan(running, network, 2, None)

    mesh.clock.advance(STALL + 1)
    sweeper = Sweeper(
        finder=mesh.uow,
        coordination=lambda t: mesh.for_tenant(t).coordination,
        clock=mesh.clock,
        stall_seconds=STALL,
    )
    assert sweeper.sweep() == {"coordinate": 1}
    mesh.drain()

    waited = read(mesh, task)
    assert (waited.status, waited.iteration) == (TaskStatus.AWAITING_APPROVAL, 2)
    assert {i for i, _ in steps_run(waited)} == {1}


def test_the_approval_timeout_is_bounded() -> None:
    for bad in (0, 604_801):
        with pytest.raises(InvalidInput, match=r"config\.approval\.timeout_seconds"):
            NetworkConfig(approval=Approval(plan=True, timeout_seconds=bad))
    assert NetworkConfig(approval=Approval(timeout_seconds=604_800)).approval.plan is False


def test_the_approval_is_stored_with_the_config_and_old_rows_need_none() -> None:
    from meshcore.adapters.sql.network_rows import config_from_json, config_to_json

    config = NetworkConfig(approval=Approval(plan=True, timeout_seconds=90))
    stored = config_to_json(config)

    assert stored["approval"] == {"plan": True, "timeout_seconds": 90}
    assert config_from_json(stored) == config
    del stored["approval"]  # a row written before approvals existed
    assert config_from_json(stored).approval == Approval(plan=False)


def test_a_webhook_can_be_told_that_a_plan_awaits_approval(mesh: FakeMesh) -> None:
    from meshcore.domain.webhooks import Webhook

    hook = Webhook("https://hooks.example.com/mesh", events=("task.awaiting_approval",))
    hook.check("config.webhook")  # an event a webhook may subscribe to
    task = waiting(mesh, config=NetworkConfig(approval=Approval(plan=True), webhook=hook))

    deliveries = list(mesh.database.committed.deliveries.values())
    assert [(d.task_id, d.event_type) for d in deliveries] == [
        (task.id, "task.awaiting_approval")
    ]
    assert deliveries[0].event_seq == task.history[-1].seq
    # The other status changes stay `task.status`.
    assert [e.type for e in task.history if e.kind == EventKind.TRANSITION] == [
        "task.status",
        "task.status",
        "task.awaiting_approval",
    ]
