from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from meshcore.domain.errors import Conflict, InvalidInput, InvalidTransition
from meshcore.domain.network import AgentType
from meshcore.domain.task import (
    EXCERPT_CHARS,
    MAX_DESCRIPTION,
    TERMINAL,
    TRANSITIONS,
    Priority,
    StepRecord,
    StepStatus,
    Task,
    TaskStatus,
    Usage,
    step_entry,
)

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in targets]
ILLEGAL = [(a, b) for a in TaskStatus for b in TaskStatus if b not in TRANSITIONS[a]]


def new_task(description: str = "Write the launch email", timeout_seconds: int = 300) -> Task:
    return Task.create(
        tenant_id="acme",
        network_id=uuid4(),
        description=description,
        context={"segment": "trial users"},
        priority=Priority.NORMAL,
        timeout_seconds=timeout_seconds,
        now=NOW,
    )


def task_in(status: TaskStatus) -> Task:
    task = new_task()
    task.status = status
    return task


def test_a_new_task_is_queued_with_one_history_entry() -> None:
    task = new_task("  Write the launch email  ")

    assert task.status is TaskStatus.QUEUED
    assert task.description == "Write the launch email"
    assert [(e.kind, e.status) for e in task.history] == [("transition", TaskStatus.QUEUED)]
    assert task.new_history == task.history


@pytest.mark.parametrize(("source", "target"), LEGAL, ids=lambda s: s.value)
def test_every_legal_transition_moves_the_task_and_joins_the_history(
    source: TaskStatus, target: TaskStatus
) -> None:
    task = task_in(source)
    later = NOW + timedelta(seconds=5)

    task.transition(target, now=later, reason="because")

    assert task.status is target
    assert task.updated_at == later
    last = task.history[-1]
    assert (last.kind, last.status, last.at) == ("transition", target, later)
    assert last.detail == {"from": source.value, "reason": "because"}


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=lambda s: s.value)
def test_every_illegal_transition_raises_and_changes_nothing(
    source: TaskStatus, target: TaskStatus
) -> None:
    task = task_in(source)
    history = list(task.history)

    with pytest.raises(InvalidTransition) as raised:
        task.transition(target, now=NOW)

    assert (raised.value.current, raised.value.target) == (source, target)
    assert f"from {source} to {target}" in str(raised.value)
    assert task.status is source
    assert task.history == history


@pytest.mark.parametrize("terminal", sorted(TERMINAL), ids=str)
def test_a_terminal_task_allows_no_transition_at_all(terminal: TaskStatus) -> None:
    task = task_in(terminal)

    assert terminal.is_terminal
    for target in TaskStatus:
        with pytest.raises(InvalidTransition):
            task.transition(target, now=NOW)


def test_only_the_four_endings_are_terminal() -> None:
    assert {s for s in TaskStatus if s.is_terminal} == {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.TIMED_OUT,
    }


def test_an_invalid_transition_is_a_conflict() -> None:
    assert issubclass(InvalidTransition, Conflict)


def test_a_revision_loop_is_recorded_in_order() -> None:
    task = new_task()
    path = [
        TaskStatus.PLANNING,
        TaskStatus.RUNNING,
        TaskStatus.SYNTHESIZING,
        TaskStatus.REVIEWING,
        TaskStatus.RUNNING,
        TaskStatus.SYNTHESIZING,
        TaskStatus.REVIEWING,
        TaskStatus.COMPLETED,
    ]
    for i, status in enumerate(path):
        task.transition(status, now=NOW + timedelta(seconds=i))

    assert [e.status for e in task.history] == [TaskStatus.QUEUED, *path]


def test_a_reviewed_task_cannot_jump_back_to_planning() -> None:
    task = task_in(TaskStatus.REVIEWING)

    with pytest.raises(InvalidTransition):
        task.transition(TaskStatus.PLANNING, now=NOW)


@pytest.mark.parametrize("description", ["", "   ", "\n\t"])
def test_an_empty_description_is_rejected(description: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        new_task(description)

    assert raised.value.field == "description"


def test_a_description_over_the_limit_is_rejected_and_one_at_it_is_not() -> None:
    assert new_task("x" * MAX_DESCRIPTION).description == "x" * MAX_DESCRIPTION
    with pytest.raises(InvalidInput) as raised:
        new_task("x" * (MAX_DESCRIPTION + 1))

    assert raised.value.field == "description"
    assert str(MAX_DESCRIPTION) in str(raised.value)


def test_the_deadline_is_the_timeout_after_creation() -> None:
    task = new_task(timeout_seconds=90)

    assert task.deadline_at == NOW + timedelta(seconds=90)
    assert not task.is_past_deadline(NOW + timedelta(seconds=89))
    assert task.is_past_deadline(NOW + timedelta(seconds=90))


def test_seconds_left_counts_down_and_stops_at_zero() -> None:
    task = new_task(timeout_seconds=90)

    assert task.seconds_left(NOW) == 90
    assert task.seconds_left(NOW + timedelta(seconds=30)) == 60
    assert task.seconds_left(NOW + timedelta(seconds=500)) == 0


def test_a_recorded_step_joins_the_history_with_where_it_ran() -> None:
    task = task_in(TaskStatus.RUNNING)
    step = StepRecord(
        attempt=2,
        task_id=task.id,
        iteration=2,
        key="research",
        agent_type=AgentType.RESEARCH,
        queue="agent.research",
        status=StepStatus.COMPLETED,
        output="facts",
        recorded_at=NOW,
        model="claude",
        latency_ms=123.456,
        worker="w1@host",
    )

    entry = step_entry(step, task.status, now=NOW)

    assert (entry.kind, entry.status, entry.agent, entry.queue) == (
        "step",
        TaskStatus.RUNNING,
        "research",
        "agent.research",
    )
    assert entry.detail == {
        "iteration": 2,
        "subtask": "research",
        "agent_version": 1,
        "status": "completed",
        "model": "claude",
        "latency_ms": 123.5,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "worker": "w1@host",
        "attempt": 2,
        "excerpt": "facts",
        "error": None,
    }


def test_a_step_event_carries_a_bounded_excerpt_of_its_output() -> None:
    task = new_task()
    step = StepRecord(
        task.id, 1, "copy", AgentType.CONTENT, "agent.content", StepStatus.COMPLETED,
        "x" * 5000, recorded_at=NOW,
    )  # fmt: skip

    entry = step_entry(step, task.status, now=NOW)

    assert entry.detail["excerpt"] == "x" * EXCERPT_CHARS
    assert entry.type == "step.finished"


def test_each_event_has_a_public_type() -> None:
    task = new_task()
    task.transition(TaskStatus.PLANNING, now=NOW)
    task.record_verdict(score=0.4, feedback="tighter", now=NOW)
    task.transition(TaskStatus.CANCELLED, now=NOW)

    assert [e.type for e in task.history] == [
        "task.status",
        "task.status",
        "critic.verdict",
        "task.cancelled",
    ]


def test_an_ended_task_cannot_be_cancelled() -> None:
    task = new_task()
    task.transition(TaskStatus.FAILED, now=NOW)

    with pytest.raises(Conflict, match="only an unfinished task can be cancelled"):
        task.check_cancellable()


def test_usage_adds_up() -> None:
    total = Usage(10, 20, 0.5) + Usage(1, 2, 0.25)

    assert total == Usage(11, 22, 0.75)


def test_a_held_task_is_released_once_with_a_fresh_heartbeat() -> None:
    task = new_task()
    task.is_held = True
    later = NOW + timedelta(hours=1)

    task.release(now=later)

    assert (task.is_held, task.heartbeat_at) == (False, later)
    with pytest.raises(Conflict, match="already released"):
        task.release(now=later)


def test_a_task_that_left_the_queue_cannot_be_released() -> None:
    task = task_in(TaskStatus.RUNNING)
    task.is_held = True

    with pytest.raises(Conflict, match="only a queued task can be processed"):
        task.release(now=NOW)
