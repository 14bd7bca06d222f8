"""One contract for the SQL repositories and the fakes the unit tests run on.

The unit tests of meshcore run on tests/fakes.py, a second database in memory; these tests
hold it to what Postgres does, so a unit test cannot pass on behaviour the record lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from meshcore.domain.agent_types import AgentTypeDef
from meshcore.domain.confidence import (
    TICK,
    ConfidenceChange,
    ConfidenceSource,
    Reinforce,
    reinforced,
)
from meshcore.domain.errors import Conflict, NotFound, TaskEnded
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import Network, NetworkConfig
from meshcore.domain.plan import Plan, PlannedSubtask
from meshcore.domain.result import TaskResult
from meshcore.domain.task import (
    EventKind,
    HistoryEntry,
    Revision,
    StepRecord,
    StepStatus,
    Subtask,
    Task,
    TaskStatus,
    TaskSummary,
    step_start_entry,
)
from meshcore.domain.usage import Usage
from meshcore.domain.webhooks import Delivery, DeliveryStatus, Webhook
from meshcore.ports import (
    DeliveryRef,
    Page,
    TaskRef,
    ToolCallRecord,
    ToolCallStatus,
    UnitOfWork,
    UnitOfWorkFactory,
)
from tests.integration.contract import NOW, Record, new_task, stored, stored_network
from tests.integration.contract import tenant as tenant
from tests.integration.contract import uow as uow

pytestmark = pytest.mark.integration

# The sweeper's queries cross tenants, so they also see other tests' rows in the shared
# database: their tests date their rows to an era other tests leave alone, and read their own
# rows out of a result (an enqueue that failed dates a heartbeat to 1970, older still).
ERA = datetime(1975, 1, 1, tzinfo=UTC)


def kind(version: int, **changes: object) -> AgentTypeDef:
    made = AgentTypeDef(
        name="legal", description="Checks claims.", role="You are legal.", version=version,
        created_at=NOW,
    )  # fmt: skip
    return replace(made, **changes)


def test_a_types_latest_version_is_current_and_every_version_stays(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.agent_types.add(kind(2, role="You are strict."))
        work.commit()

    with uow(tenant) as work:
        assert work.agent_types.current()["legal"].role == "You are strict."
        assert work.agent_types.current(["legal", "other"]).keys() == {"legal"}
        assert work.agent_types.version("legal", 1) == kind(1)
        assert work.agent_types.version("legal", 3) is None
        assert work.agent_types.latest_version("legal") == 2
        assert work.agent_types.latest_version("other") == 0


def test_a_deleted_type_is_not_current_but_its_versions_remain(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.agent_types.add(kind(2), is_deleted=True)
        work.commit()

    with uow(tenant) as work:
        assert work.agent_types.current() == {}
        assert work.agent_types.latest_version("legal") == 2
        assert work.agent_types.version("legal", 1) == kind(1)


def test_a_version_stored_twice_is_a_conflict(uow: UnitOfWorkFactory, tenant: str) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.commit()

    with uow(tenant) as work, pytest.raises(Conflict):
        work.agent_types.add(kind(1, role="Another."))


def test_types_are_the_tenants_own(uow: UnitOfWorkFactory, tenant: str) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.commit()

    with uow(f"{tenant}-other") as work:
        assert work.agent_types.current() == {}
        assert work.agent_types.version("legal", 1) is None


def test_networks_using_a_type_are_those_with_an_agent_of_it(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    using = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
    )
    for name in ("coordinator", "critic", "legal"):
        using.new_agent(name=name, type=name, now=NOW)
    other = Network.create(
        tenant_id=tenant, name="m", description="", config=NetworkConfig(), now=NOW
    )
    other.new_agent(name="coordinator", type="coordinator", now=NOW)
    with uow(tenant) as work:
        work.networks.add(using)
        work.networks.add(other)
        work.commit()

    with uow(tenant) as work:
        assert work.agent_types.networks_using("legal") == [using.id]
        assert work.agent_types.networks_using("design") == []


def test_a_networks_agents_come_back_in_the_order_they_were_added(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
    )
    names = ["critic", "research", "coordinator", "content", "design", "analytics"]
    for name in names:  # all at one instant, as a network's team is made
        network.new_agent(name=name, type=name, now=NOW)
    with uow(tenant) as work:
        work.networks.add(network)
        work.commit()

    with uow(tenant) as work:
        assert [a.name for a in work.networks.get(network.id).agents] == names
        assert [a.name for a in work.agents.list(network.id)] == names


def test_networks_list_newest_first_then_by_id_and_count_them_all(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    made = [
        Network.create(
            tenant_id=tenant,
            name=f"n{i}",
            description="",
            config=NetworkConfig(),
            now=NOW.replace(minute=i % 2),  # pairs made in one instant
        )
        for i in range(5)
    ]
    with uow(tenant) as work:
        for network in made:
            work.networks.add(network)
        work.commit()
    expected = sorted(made, key=lambda n: (-n.created_at.timestamp(), str(n.id)))

    with uow(tenant) as work:
        first, total = work.networks.list(Page(offset=0, limit=3))
        rest, _ = work.networks.list(Page(offset=3, limit=3))

    assert total == 5
    assert [n.id for n in first + rest] == [n.id for n in expected]


def test_memory_lists_newest_first_then_by_id_filtered_and_counted(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
    )
    items = [
        MemoryItem.create(
            tenant_id=tenant,
            network_id=network.id,
            type=MemoryType.FACT if i % 3 else MemoryType.DECISION,
            content=f"item {i}",
            confidence=i / 10,
            now=NOW.replace(minute=i // 2),  # pairs made in one instant
        )
        for i in range(10)
    ]
    with uow(tenant) as work:
        work.networks.add(network)
        for item in items:
            work.memory.add(item)
        work.commit()
    facts = [m for m in items if m.type is MemoryType.FACT and m.confidence >= 0.2]
    expected = sorted(facts, key=lambda m: (-m.created_at.timestamp(), str(m.id)))
    query = MemoryQuery(types=(MemoryType.FACT,), min_confidence=0.2, limit=4)

    with uow(tenant) as work:
        first = work.memory.list(network.id, query)
        rest = work.memory.list(network.id, replace(query, offset=4))
        count = work.memory.count(network.id, query)

    assert count == len(facts)
    assert [m.id for m in first + rest] == [m.id for m in expected]


# --- tasks, steps, tool calls and webhook deliveries -------------------------------------


def plan_of(*keys: str, words: str = "Find out about") -> Plan:
    """A subtask per key, each in a wave of its own after the one before."""
    subtasks = [
        PlannedSubtask(
            key,
            "research",
            f"{words} {key}.",
            (keys[i - 1],) if i else (),
            agent_version=2,
            queue="research",
        )
        for i, key in enumerate(keys)
    ]
    return Plan(tuple((s,) for s in subtasks))


def step_of(
    task: Task, key: str, *, iteration: int = 0, at: datetime = NOW, attempt: int = 1
) -> StepRecord:
    return StepRecord(
        task_id=task.id, iteration=iteration, key=key, agent_type="research", queue="research",
        status=StepStatus.COMPLETED, output=f"{key}: done.", recorded_at=at,
        model="fake/offline", usage=Usage(100, 20, 0.01), latency_ms=12.5, memory_read=("m1",),
        worker="w@1", attempt=attempt, traceparent="00-abc-def-01", agent_version=2,
    )  # fmt: skip


def call_of(task: Task, number: int, *, key: str = "facts") -> ToolCallRecord:
    return ToolCallRecord(
        task_id=task.id, iteration=0, key=key, number=number, server="search", tool="lookup",
        arguments_hash=f"h{number}", arguments={"q": f"query {number}", "n": number},
        status=ToolCallStatus.STARTED, started_at=NOW,
    )  # fmt: skip


def later(minutes: float, since: datetime = NOW) -> datetime:
    return since + timedelta(minutes=minutes)


def test_a_task_reads_back_as_added_with_its_events_numbered_from_one(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    own_plan = [
        PlannedSubtask("facts", "research", "Find the facts."),
        # Pinned as a plan is when it runs: a task keeps only what its client gave.
        PlannedSubtask("draft", "content", "Draft it.", ("facts",), agent_version=3, queue="q"),
    ]
    task = new_task(network, plan=own_plan, webhook=Webhook("https://example.com/hook"))
    task.transition(TaskStatus.PLANNING, now=NOW)  # two events before it is first stored
    stored(uow, task)

    assert task.revision == 2
    assert [e.seq for e in task.history] == [1, 2]
    assert task.new_history == []
    with uow(tenant) as work:
        found = work.tasks.get(task.id)
        history = work.tasks.history(task.id)
        in_network = work.tasks.in_network(task.id, network_id=network.id)
        revision = work.tasks.revision(task.id, network_id=network.id)
        with pytest.raises(NotFound):
            work.tasks.in_network(task.id, network_id=uuid4())
        with pytest.raises(NotFound):
            work.tasks.revision(task.id, network_id=uuid4())
        with pytest.raises(NotFound):
            work.tasks.get(uuid4())
    with uow(f"{tenant}-other") as work:
        with pytest.raises(NotFound):
            work.tasks.get(task.id)
        assert work.tasks.history(task.id) == []

    client_plan = [
        PlannedSubtask(s.key, s.agent_type, s.description, s.depends_on) for s in own_plan
    ]
    assert found == replace(task, plan=client_plan, history=[], new_history=[])
    assert in_network == found
    assert history == task.history
    assert revision == Revision(2, TaskStatus.PLANNING)


def test_tasks_list_newest_first_then_by_id_by_network_and_status_and_count_them(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network, elsewhere = stored_network(uow, tenant), stored_network(uow, tenant)
    made = [new_task(network, at=NOW.replace(minute=i // 2)) for i in range(7)]  # pairs
    for task in made[::3]:
        task.transition(TaskStatus.CANCELLED, now=task.created_at)
    stored(uow, *made, new_task(elsewhere))
    expected = sorted(made, key=lambda t: (-t.created_at.timestamp(), str(t.id)))

    with uow(tenant) as work:
        first, total = work.tasks.list(network.id, Page(offset=0, limit=4))
        rest, _ = work.tasks.list(network.id, Page(offset=4, limit=4))
        cancelled, counted = work.tasks.list(network.id, Page(), TaskStatus.CANCELLED)
        running = work.tasks.list(network.id, Page(), TaskStatus.RUNNING)
    with uow(f"{tenant}-other") as work:
        theirs = work.tasks.list(network.id, Page())

    assert total == 7
    assert [t.id for t in first + rest] == [t.id for t in expected]
    assert first[0] == replace(expected[0], history=[], new_history=[])
    assert counted == 3
    assert [t.id for t in cancelled] == [t.id for t in expected if t.status.is_terminal]
    assert running == ([], 0)
    assert theirs == ([], 0)


def test_saving_a_task_keeps_its_running_state_and_numbers_new_events_after_the_last(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    at = later(5)

    with uow(tenant) as work:
        loaded = work.tasks.get(task.id)
        loaded.transition(TaskStatus.PLANNING, now=at)
        loaded.transition(TaskStatus.RUNNING, now=at)
        loaded.start_revision(now=at)
        loaded.advance_wave(now=at)
        loaded.result = TaskResult(answer="Hello.", iteration=1, score=0.9)
        loaded.usage = Usage(10, 5, 0.5)
        loaded.deadline_at = later(60, at)
        # Not a column a save writes: what the client asked stays as it was submitted.
        loaded.description = "Something else."
        work.tasks.save(loaded)
        work.commit()

    assert loaded.revision == 4
    assert [e.seq for e in loaded.history] == [2, 3, 4]
    with uow(tenant) as work:
        found = work.tasks.get(task.id)
        history = work.tasks.history(task.id)
        assert found == replace(loaded, description=task.description, history=[])
        assert history[1:] == loaded.history
        assert work.tasks.events(task.id, after=1, limit=2) == history[1:3]
        assert work.tasks.events(task.id, after=4, limit=10) == []
        # A save with no new event changes the state, not the revision.
        found.heartbeat_at = later(10)
        work.tasks.save(found)
        work.commit()

    with uow(tenant) as work:
        assert work.tasks.revision(task.id, network_id=network.id) == Revision(
            4, TaskStatus.RUNNING
        )
        assert work.tasks.get(task.id).heartbeat_at == later(10)


def test_saving_new_events_of_a_task_the_tenant_lacks_is_not_found(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    mine, never_stored = new_task(network), new_task(network)
    stored(uow, mine)
    for task in (mine, never_stored):
        task.transition(TaskStatus.PLANNING, now=later(1))

    with uow(tenant) as work, pytest.raises(NotFound):
        work.tasks.save(never_stored)
    with uow(f"{tenant}-other") as work, pytest.raises(NotFound):
        work.tasks.save(mine)

    with uow(tenant) as work:
        assert work.tasks.revision(mine.id, network_id=network.id) == Revision(1, TaskStatus.QUEUED)


def test_a_steps_start_and_record_move_the_heartbeat_revision_and_usage(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    task.transition(TaskStatus.PLANNING, now=NOW)
    stored(uow, task)
    start = step_start_entry(
        iteration=0, key="facts", agent_type="research", queue="research", attempt=1,
        status=TaskStatus.QUEUED,  # the status the task's row holds replaces it
        now=later(1),
    )  # fmt: skip

    with uow(tenant) as work:
        work.tasks.begin_step(start, task.id, now=later(1))
        work.tasks.add_step(step_of(task, "facts"), now=later(2))
        work.tasks.add_step(step_of(task, "draft"), now=later(3))
        work.commit()

    with uow(tenant) as work:
        found = work.tasks.get(task.id)
        events = work.tasks.events(task.id, after=2, limit=10)
    assert (found.revision, found.heartbeat_at) == (5, later(3))
    assert found.usage == Usage(200, 40, 0.02)
    assert found.updated_at == NOW
    assert [(e.seq, e.kind, e.status, e.at) for e in events] == [
        (3, EventKind.STEP_START, TaskStatus.PLANNING, later(1)),
        (4, EventKind.STEP, TaskStatus.PLANNING, later(2)),
        (5, EventKind.STEP, TaskStatus.PLANNING, later(3)),
    ]
    assert [e.detail["subtask"] for e in events] == ["facts", "facts", "draft"]


def test_an_ended_task_takes_no_more_work_but_still_takes_webhook_attempts(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    task.transition(TaskStatus.CANCELLED, now=NOW)
    stored(uow, task)
    start = step_start_entry(
        iteration=0, key="facts", agent_type="research", queue="research", attempt=1,
        status=TaskStatus.QUEUED, now=later(1),
    )  # fmt: skip
    refused: list[Callable[[UnitOfWork], None]] = [
        lambda work: work.tasks.begin_step(start, task.id, now=later(1)),
        lambda work: work.tasks.add_step(step_of(task, "facts"), now=later(1)),
        lambda work: work.tasks.add_plan(task.id, 0, plan_of("facts"), now=later(1)),
        lambda work: work.tasks.replace_plan(task.id, 0, plan_of("facts"), now=later(1)),
    ]

    for write in refused:
        with uow(tenant) as work, pytest.raises(TaskEnded):
            write(work)
    with uow(tenant) as work:
        attempt = HistoryEntry(later(2), EventKind.WEBHOOK, TaskStatus.QUEUED, detail={"n": 1})
        work.tasks.add_webhook_attempt(task.id, attempt)
        work.commit()

    with uow(tenant) as work:
        assert work.tasks.revision(task.id, network_id=network.id) == Revision(
            3, TaskStatus.CANCELLED
        )
        assert work.tasks.history(task.id)[-1] == replace(
            attempt, seq=3, status=TaskStatus.CANCELLED
        )
        assert work.tasks.subtasks(task.id, 0) == []
        assert work.tasks.get(task.id).usage == Usage()


def test_touching_a_task_moves_its_heartbeat_and_nothing_else(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)

    with uow(tenant) as work:
        work.tasks.touch(task.id, ERA)  # as an enqueue that failed does
        work.tasks.touch(uuid4(), ERA)  # no such task: nothing to touch
        work.commit()
    with uow(f"{tenant}-other") as work:
        work.tasks.touch(task.id, later(60))  # not theirs
        work.commit()

    with uow(tenant) as work:
        found = work.tasks.get(task.id)
        assert len(work.tasks.history(task.id)) == 1
    assert found == replace(task, heartbeat_at=ERA, history=[])


def test_an_iterations_first_plan_wins_and_is_noted_once_until_it_is_replaced(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    first = plan_of("facts", "draft")

    with uow(tenant) as work:
        work.tasks.add_plan(task.id, 0, first, now=later(1))
        work.commit()
    with uow(tenant) as work:
        # A redelivered plan, its words another model call's: the stored one stands.
        work.tasks.add_plan(task.id, 0, plan_of("facts", "draft", words="Redo"), now=later(2))
        work.tasks.add_plan(task.id, 1, plan_of("review"), now=later(3))
        work.commit()

    with uow(tenant) as work:
        current = work.tasks.subtasks(task.id, 0)
        every = work.tasks.every_subtask(task.id)
        draft = work.tasks.subtask(task.id, 0, "draft")
        assert work.tasks.subtask(task.id, 0, "other") is None
        plans = [e for e in work.tasks.history(task.id) if e.kind == EventKind.PLAN]
    assert [s.planned for s in current] == list(first.subtasks)
    assert [(s.iteration, s.wave, s.key) for s in every] == [
        (0, 0, "facts"), (0, 1, "draft"), (1, 0, "review"),
    ]  # fmt: skip
    assert draft == Subtask(task.id, 0, 1, first.subtasks[1])
    assert [(e.seq, e.at, e.detail["iteration"]) for e in plans] == [
        (2, later(1), 0),
        (3, later(3), 1),
    ]
    assert plans[0].detail["subtasks"] == [
        {"key": "facts", "agent": "research", "agent_version": 2, "depends_on": [], "wave": 0},
        {"key": "draft", "agent": "research", "agent_version": 2, "depends_on": ["facts"],
         "wave": 1},
    ]  # fmt: skip

    with uow(tenant) as work:
        work.tasks.replace_plan(task.id, 0, plan_of("outline"), now=later(4))
        work.commit()
    with uow(tenant) as work:
        assert [s.key for s in work.tasks.subtasks(task.id, 0)] == ["outline"]
        assert [s.key for s in work.tasks.subtasks(task.id, 1)] == ["review"]
        assert work.tasks.history(task.id)[-1].detail["subtasks"][0]["key"] == "outline"
        assert work.tasks.revision(task.id, network_id=network.id).revision == 4


def test_a_summary_counts_the_current_iterations_subtasks_and_their_recorded_steps(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    with uow(tenant) as work:
        work.tasks.add_plan(task.id, 0, plan_of("facts", "draft", "check"), now=later(1))
        work.tasks.add_plan(task.id, 1, plan_of("facts"), now=later(1))
        for step in (
            step_of(task, "@plan"),  # the coordinator's step: not one of the plan's
            step_of(task, "facts"),
            step_of(task, "facts", iteration=1),  # not the current iteration's
        ):
            work.steps.record(step)
        loaded = work.tasks.get(task.id)
        loaded.result = TaskResult(answer="Hello.", iteration=0, score=0.75)
        work.tasks.save(loaded)
        work.commit()

    with uow(tenant) as work:
        summary = work.tasks.summary(task.id, network_id=network.id)
        facts = work.tasks.subtask(task.id, 0, "facts")
        with pytest.raises(NotFound):
            work.tasks.summary(task.id, network_id=uuid4())
    assert summary == TaskSummary(
        id=task.id, network_id=network.id, status=TaskStatus.QUEUED, revision=3, iteration=0,
        wave=0, steps_done=1, steps_planned=3, answer="Hello.", score=0.75,
    )  # fmt: skip
    assert facts is not None and facts.step == step_of(task, "facts")


def test_stalled_tasks_are_unfinished_unheld_ones_whose_heartbeat_or_approval_ran_out(
    uow: Record, tenant: str
) -> None:
    network, theirs = stored_network(uow, tenant), stored_network(uow, f"{tenant}-other")

    def at(minutes: float) -> datetime:
        return later(minutes, ERA)

    queued = new_task(network, at=at(10))
    running = new_task(network, at=at(0))
    running.transition(TaskStatus.PLANNING, now=at(5))
    fresh = new_task(network, at=at(0))
    fresh.transition(TaskStatus.PLANNING, now=at(90))
    ended = new_task(network, at=at(0))
    ended.transition(TaskStatus.CANCELLED, now=at(1))
    held = new_task(network, at=at(0), is_held=True)
    # A plan awaiting approval has sent nothing to re-drive: it stalls when its deadline
    # passes, however long its heartbeat has been still.
    waiting = new_task(network, at=at(0))
    waiting.transition(TaskStatus.PLANNING, now=at(1))
    waiting.await_approval([], now=at(1), timeout_seconds=3 * 3600)
    expired = new_task(network, at=at(0))
    expired.transition(TaskStatus.PLANNING, now=at(20))
    expired.await_approval([], now=at(20), timeout_seconds=600)
    stored(uow, queued, running, fresh, ended, held, waiting, expired)
    elsewhere = new_task(theirs, at=at(15))
    stored(uow, elsewhere)
    ours = {tenant, f"{tenant}-other"}
    expected = [
        TaskRef(t.tenant_id, t.id, t.priority) for t in (running, queued, elsewhere, expired)
    ]

    found = [r for r in uow.stalled(at(60), 1000) if r.tenant_id in ours]
    limited = uow.stalled(at(60), 2)

    assert found == expected
    assert len(limited) <= 2
    mine = [r for r in limited if r.tenant_id in ours]
    assert mine == expected[: len(mine)]


def test_due_deliveries_are_pending_due_and_unleased_of_every_tenant_soonest_first(
    uow: Record, tenant: str
) -> None:
    network, theirs = stored_network(uow, tenant), stored_network(uow, f"{tenant}-other")
    hook = Webhook("https://example.com/hook", events=("task.status",))

    def at(minutes: float) -> datetime:
        return later(minutes, ERA)

    first = new_task(network, at=at(1), webhook=hook)
    first.transition(TaskStatus.PLANNING, now=at(2))
    retried, retried_later, delivered, late = (
        new_task(network, at=at(m), webhook=hook) for m in (3, 5, 6, 70)
    )
    stored(uow, first, retried, retried_later, delivered, late)
    elsewhere = new_task(theirs, at=at(4), webhook=hook)
    stored(uow, elsewhere)
    with uow(tenant) as work:
        leased_then, leased_now = work.webhooks.for_task(first.id)
        (retry,) = work.webhooks.for_task(retried.id)
        (retry_later,) = work.webhooks.for_task(retried_later.id)
        (done,) = work.webhooks.for_task(delivered.id)
        assert work.webhooks.lease(leased_then.id, now=at(1), until=at(30)) is not None
        assert work.webhooks.lease(leased_now.id, now=at(2), until=at(120)) is not None
        pending = DeliveryStatus.PENDING
        work.webhooks.record(retry.id, attempts=1, status=pending, next_attempt_at=at(60))
        work.webhooks.record(retry_later.id, attempts=1, status=pending, next_attempt_at=at(90))
        work.webhooks.record(done.id, attempts=1, status=DeliveryStatus.DELIVERED,
                             next_attempt_at=at(6))  # fmt: skip
        work.commit()
    with uow(f"{tenant}-other") as work:
        (theirs_due,) = work.webhooks.for_task(elsewhere.id)
    ours = {tenant, f"{tenant}-other"}
    expected = [
        DeliveryRef(tenant, leased_then.id),  # its lease ran out at 30
        DeliveryRef(f"{tenant}-other", theirs_due.id),
        DeliveryRef(tenant, retry.id),  # due at 60: by `now`, not only before it
    ]

    found = [r for r in uow.due_deliveries(at(60), 1000) if r.tenant_id in ours]
    limited = uow.due_deliveries(at(60), 2)

    assert found == expected
    assert len(limited) <= 2
    mine = [r for r in limited if r.tenant_id in ours]
    assert mine == expected[: len(mine)]


def test_a_step_is_recorded_once_and_reads_back_as_its_first_record(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    first = step_of(task, "facts", attempt=2)

    with uow(tenant) as work:
        kept = work.steps.record(first)
        again = work.steps.record(replace(first, output="Another answer.", attempt=3))
        work.commit()
    with uow(tenant) as work:
        late = work.steps.record(replace(first, status=StepStatus.FAILED, output="Late."))
        found = work.steps.get(task.id, 0, "facts")
        assert work.steps.get(task.id, 1, "facts") is None
        work.commit()
    with uow(f"{tenant}-other") as work:
        assert work.steps.get(task.id, 0, "facts") is None

    # Which attempt made a step is its history's to tell (step_entry): the log keeps none.
    logged = replace(first, attempt=1)
    assert kept == (logged, True)
    assert again == (logged, False)
    assert late == (logged, False)
    assert found == logged


def test_an_iterations_steps_list_in_the_order_they_were_recorded_then_by_key(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    steps = [
        step_of(task, key, at=later(minutes))
        for key, minutes in (("d", 2), ("b", 1), ("a", 1), ("c", 0))
    ]
    with uow(tenant) as work:
        for step in [*steps, step_of(task, "e", iteration=1)]:
            work.steps.record(step)
        work.commit()

    with uow(tenant) as work:
        assert [s.key for s in work.steps.for_iteration(task.id, 0)] == ["c", "a", "b", "d"]
        assert [s.key for s in work.steps.for_iteration(task.id, 1)] == ["e"]
    with uow(f"{tenant}-other") as work:
        assert work.steps.for_iteration(task.id, 0) == []


def test_a_step_is_leased_to_one_attempt_at_a_time_for_the_whole_lease(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)

    def attempt(seconds: float, key: str = "facts") -> int | None:
        with uow(tenant) as work:
            begun = work.steps.begin_attempt(
                task.id, 0, key, now=NOW + timedelta(seconds=seconds), lease_seconds=60
            )
            work.commit()
        return begun

    assert attempt(0) == 1
    assert attempt(30) is None
    assert attempt(30, key="draft") == 1  # each step has a lease of its own
    assert attempt(60) is None  # the lease holds to its very end
    assert attempt(61) == 2
    assert attempt(121) is None
    assert attempt(122) == 3


def test_a_renewed_lease_runs_from_its_renewal(uow: UnitOfWorkFactory, tenant: str) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)

    def attempt(seconds: float) -> int | None:
        with uow(tenant) as work:
            begun = work.steps.begin_attempt(
                task.id, 0, "facts", now=NOW + timedelta(seconds=seconds), lease_seconds=60
            )
            work.commit()
        return begun

    assert attempt(0) == 1
    with uow(tenant) as work:
        work.steps.renew_lease(task.id, 0, "facts", now=NOW + timedelta(seconds=50))
        work.steps.renew_lease(task.id, 0, "other", now=NOW)  # never begun: nothing to renew
        work.commit()
    assert attempt(100) is None  # 50 s into the renewed lease
    assert attempt(111) == 2
    with uow(f"{tenant}-other") as work:
        work.steps.renew_lease(task.id, 0, "facts", now=NOW + timedelta(seconds=500))
        work.commit()  # another tenant's renewal reaches nothing
    assert attempt(172) == 3


def test_what_a_step_writes_after_its_network_was_deleted_is_not_found(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network, webhook=Webhook("https://example.com/hook", ("task.status",)))
    stored(uow, task)
    with uow(tenant) as work:
        work.steps.record(step_of(task, "facts"))
        work.steps.begin_attempt(task.id, 0, "draft", now=NOW, lease_seconds=60)
        work.tool_calls.start(call_of(task, 1))
        work.networks.delete(network.id)  # its tasks, and all they hold, go with it
        work.commit()
    writes: list[Callable[[UnitOfWork], object]] = [
        lambda work: work.steps.record(step_of(task, "draft")),
        lambda work: work.steps.begin_attempt(task.id, 0, "draft", now=NOW, lease_seconds=60),
        lambda work: work.tool_calls.start(call_of(task, 2)),
    ]

    for write in writes:
        with pytest.raises(NotFound), uow(tenant) as work:
            write(work)
            work.commit()
    with uow(tenant) as work:
        assert work.steps.get(task.id, 0, "facts") is None
        assert work.tool_calls.for_step(task.id, 0, "facts") == []
        assert work.webhooks.for_task(task.id) == []


def test_a_tool_call_is_started_once_then_finished_and_replayed_in_order(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    first, second, elsewhere = call_of(task, 1), call_of(task, 2), call_of(task, 1, key="draft")

    with uow(tenant) as work:
        assert work.tool_calls.start(second) == (second, True)
        assert work.tool_calls.start(first) == (first, True)
        assert work.tool_calls.start(elsewhere) == (elsewhere, True)
        work.commit()
    with uow(tenant) as work:
        # A redelivered step asks again, its model this time with other arguments.
        again = work.tool_calls.start(replace(first, arguments={"q": "x"}, arguments_hash="x"))
        assert work.tool_calls.for_step(task.id, 0, "facts") == [first, second]
        work.tool_calls.finish(
            first, status=ToolCallStatus.DONE, result="42", is_error=False, latency_ms=8.5,
            now=later(1),
        )  # fmt: skip
        work.tool_calls.finish(
            second, status=ToolCallStatus.FAILED, result="timed out", is_error=True,
            latency_ms=30_000.0, now=later(2),
        )  # fmt: skip
        work.commit()

    assert again == (first, False)
    with uow(tenant) as work:
        replayed = work.tool_calls.for_step(task.id, 0, "facts")
        assert work.tool_calls.for_step(task.id, 0, "draft") == [elsewhere]
    with uow(f"{tenant}-other") as work:
        assert work.tool_calls.for_step(task.id, 0, "facts") == []
    assert replayed == [
        replace(first, status=ToolCallStatus.DONE, result="42", latency_ms=8.5,
                finished_at=later(1)),
        replace(second, status=ToolCallStatus.FAILED, result="timed out", is_error=True,
                latency_ms=30_000.0, finished_at=later(2)),
    ]  # fmt: skip


def test_finishing_a_call_the_tenant_never_started_records_nothing(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    started = call_of(task, 1)
    with uow(tenant) as work:
        work.tool_calls.start(started)
        work.commit()

    for who, call in ((tenant, call_of(task, 2)), (f"{tenant}-other", started)):
        with uow(who) as work:
            work.tool_calls.finish(
                call, status=ToolCallStatus.DONE, result="42", is_error=False, latency_ms=1.0,
                now=later(1),
            )  # fmt: skip
            work.commit()

    with uow(tenant) as work:
        assert work.tool_calls.for_step(task.id, 0, "facts") == [started]


def test_a_task_with_a_webhook_has_a_delivery_per_event_it_wants_in_event_order(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    hook = Webhook("https://example.com/hook", events=("task.status", "task.cancelled"))
    task, unwatched = new_task(network, webhook=hook), new_task(network)
    stored(uow, task, unwatched)
    with uow(tenant) as work:
        loaded = work.tasks.get(task.id)
        loaded.transition(TaskStatus.PLANNING, now=later(1))
        loaded.record_verdict(score=0.5, feedback="Meh.", now=later(1))  # not wanted
        loaded.transition(TaskStatus.CANCELLED, now=later(2))
        work.tasks.save(loaded)
        # An attempt's own event is never delivered: it would deliver itself forever.
        entry = HistoryEntry(later(3), EventKind.WEBHOOK, TaskStatus.QUEUED, detail={"n": 1})
        work.tasks.add_webhook_attempt(task.id, entry)
        work.commit()

    with uow(tenant) as work:
        deliveries = work.webhooks.for_task(task.id)
        assert work.webhooks.for_task(unwatched.id) == []
    with uow(f"{tenant}-other") as work:
        assert work.webhooks.for_task(task.id) == []
    assert [(d.event_seq, d.event_type, d.next_attempt_at) for d in deliveries] == [
        (1, "task.status", NOW), (2, "task.status", later(1)), (4, "task.cancelled", later(2)),
    ]  # fmt: skip
    assert {(d.tenant_id, d.task_id, d.network_id) for d in deliveries} == {
        (tenant, task.id, network.id)
    }
    assert {(d.status, d.attempts) for d in deliveries} == {(DeliveryStatus.PENDING, 0)}


def test_a_delivery_is_leased_when_due_until_its_attempt_is_recorded(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network, webhook=Webhook("https://example.com/hook", ("task.status",)))
    stored(uow, task)
    with uow(tenant) as work:
        (delivery,) = work.webhooks.for_task(task.id)

    def lease(at: datetime, until: datetime, who: str = tenant) -> Delivery | None:
        with uow(who) as work:
            leased = work.webhooks.lease(delivery.id, now=at, until=until)
            work.commit()
        return leased

    def record(attempts: int, status: DeliveryStatus, next_attempt_at: datetime) -> None:
        with uow(tenant) as work:
            work.webhooks.record(
                delivery.id, attempts=attempts, status=status, next_attempt_at=next_attempt_at
            )
            work.commit()

    assert lease(later(-1), until=later(1)) is None  # not due yet
    assert lease(NOW, until=later(1), who=f"{tenant}-other") is None
    assert lease(NOW, until=later(1)) == delivery
    assert lease(later(0.5), until=later(2)) is None
    assert lease(later(1), until=later(2)) is None  # the lease holds to its very end
    assert lease(later(1.5), until=later(3)) == delivery  # a lease that ran out is taken anew
    record(1, DeliveryStatus.PENDING, later(2))  # and the record lets it go
    assert lease(later(2), until=later(4)) == replace(
        delivery, attempts=1, next_attempt_at=later(2)
    )
    record(2, DeliveryStatus.DELIVERED, later(2))
    assert lease(later(10), until=later(11)) is None
    with uow(tenant) as work:
        assert work.webhooks.for_task(task.id) == [
            replace(delivery, attempts=2, status=DeliveryStatus.DELIVERED, next_attempt_at=later(2))
        ]


def test_recording_a_delivery_the_tenant_lacks_changes_nothing(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network, webhook=Webhook("https://example.com/hook", ("task.status",)))
    stored(uow, task)
    with uow(tenant) as work:
        (delivery,) = work.webhooks.for_task(task.id)

    with uow(f"{tenant}-other") as work:
        for delivery_id in (delivery.id, uuid4()):
            work.webhooks.record(
                delivery_id, attempts=5, status=DeliveryStatus.FAILED, next_attempt_at=later(60)
            )
        work.commit()

    with uow(tenant) as work:
        assert work.webhooks.for_task(task.id) == [delivery]


# --- what memory learns: confidence changes ----------------------------------------------


def stored_item(uow: UnitOfWorkFactory, network: Network, confidence: float = 0.5) -> MemoryItem:
    item = MemoryItem.create(
        tenant_id=network.tenant_id,
        network_id=network.id,
        type=MemoryType.FACT,
        content="Orbit ships in May",
        confidence=confidence,
        now=NOW,
    )
    with uow(network.tenant_id) as work:
        work.memory.add(item)
        work.commit()
    return item


def verdict(
    work: UnitOfWork,
    network: Network,
    item: MemoryItem,
    signal: float,
    *,
    source: ConfidenceSource = ConfidenceSource.CRITIC,
    reason: str = "the critic passed it",
    task_id: UUID | None = None,
) -> ConfidenceChange | None:
    return work.memory.change_confidence(
        network.id, item.id, Reinforce(signal),
        source=source, reason=reason, task_id=task_id, at=NOW,
    )


def test_a_confidence_change_moves_the_item_and_its_history_is_a_chain_in_order(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    item = stored_item(uow, network)
    task_id = uuid4()
    up = reinforced(0.5, 1.0)

    with uow(tenant) as work:
        first = verdict(work, network, item, 1.0, task_id=task_id)
        work.commit()
    with uow(tenant) as work:
        # In the same instant as the first: recorded after it all the same.
        second = verdict(work, network, item, -0.5, source=ConfidenceSource.RATING, reason="2/5")
        work.commit()

    assert first == ConfidenceChange(
        first.id, item.id, task_id, ConfidenceSource.CRITIC, "the critic passed it", 0.5, up, NOW
    )
    assert second == ConfidenceChange(
        second.id, item.id, None, ConfidenceSource.RATING, "2/5", up, reinforced(up, -0.5),
        NOW + TICK,
    )  # fmt: skip
    with uow(tenant) as work:
        assert work.memory.get(network.id, item.id).confidence == reinforced(up, -0.5)
        assert work.memory.confidence_history(network.id, item.id) == [first, second]


def test_no_change_is_made_to_an_item_the_network_lacks_nor_by_a_verdict_that_moves_nothing(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network, elsewhere = stored_network(uow, tenant), stored_network(uow, tenant)
    item = stored_item(uow, network, confidence=1.0)
    foreign = stored_network(uow, f"{tenant}-other")
    theirs = stored_item(uow, foreign)

    with uow(tenant) as work:
        assert verdict(work, network, item, 1.0) is None  # at the ceiling or past it
        assert verdict(work, network, item, 0.0) is None
        assert verdict(work, elsewhere, item, -1.0) is None
        assert work.memory.change_confidence(
            network.id, theirs.id, Reinforce(-1.0), source=ConfidenceSource.MERGE, reason="r",
            task_id=None, at=NOW,
        ) is None  # fmt: skip
        assert work.memory.change_confidence(
            network.id, uuid4(), Reinforce(-1.0), source=ConfidenceSource.MERGE, reason="r",
            task_id=None, at=NOW,
        ) is None  # fmt: skip
        work.commit()

    with uow(tenant) as work:
        assert work.memory.get(network.id, item.id).confidence == 1.0
        assert work.memory.confidence_history(network.id, item.id) == []
    with uow(f"{tenant}-other") as work:
        assert work.memory.get(foreign.id, theirs.id).confidence == 0.5
        assert work.memory.confidence_history(foreign.id, theirs.id) == []


def test_an_items_history_is_read_only_by_its_tenant_through_its_network(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network, elsewhere = stored_network(uow, tenant), stored_network(uow, tenant)
    item = stored_item(uow, network)
    with uow(tenant) as work:
        verdict(work, network, item, 1.0)
        work.commit()

    with uow(tenant) as work:
        assert work.memory.confidence_history(elsewhere.id, item.id) == []
    with uow(f"{tenant}-other") as work:
        assert work.memory.confidence_history(network.id, item.id) == []


def test_a_change_rolled_back_leaves_the_item_and_its_history_as_they_were(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    item = stored_item(uow, network)

    with uow(tenant) as work:
        assert verdict(work, network, item, 1.0) is not None  # and no commit

    with uow(tenant) as work:
        assert work.memory.get(network.id, item.id).confidence == 0.5
        assert work.memory.confidence_history(network.id, item.id) == []
