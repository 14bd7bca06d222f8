"""The workflow's decisions, from recorded state alone: no fakes, no clock, no queue."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from meshcore.domain import workflow
from meshcore.domain.network import Approval, NetworkConfig
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.result import Contribution, TaskResult
from meshcore.domain.task import (
    HistoryEntry,
    Priority,
    StepRecord,
    StepStatus,
    Subtask,
    Task,
    TaskStatus,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TASK = uuid4()


def step(
    key: str, status: StepStatus = StepStatus.COMPLETED, error: str | None = None
) -> StepRecord:
    return StepRecord(
        TASK, 1, key, "research", "agent.research", status, f"{key} done", NOW, error=error
    )


def subtask(key: str, wave: int, status: StepStatus | None = StepStatus.COMPLETED) -> Subtask:
    planned = PlannedSubtask(key, "research", f"do {key}")
    recorded = step(key, status, "it broke" if status is StepStatus.FAILED else None)
    return Subtask(TASK, 1, wave, planned, recorded if status is not None else None)


def test_a_wave_with_a_step_still_unrecorded_waits_for_it() -> None:
    decided = workflow.after_wave([subtask("a", 0), subtask("b", 0, None)], 0, None)

    assert decided == workflow.WaitForSteps(("b",))


def test_a_complete_wave_runs_the_next_and_the_last_one_synthesises() -> None:
    plan = [subtask("a", 0), subtask("b", 1, None), subtask("c", 1, None)]

    decided = workflow.after_wave(plan, 0, None)

    assert isinstance(decided, workflow.RunWave)
    assert [s.key for s in decided.subtasks] == ["b", "c"]
    assert workflow.after_wave([subtask("a", 0), subtask("b", 1)], 1, None) == (
        workflow.Synthesise()
    )


def test_a_failed_step_or_a_spent_budget_fails_the_task() -> None:
    failed = workflow.after_wave([subtask("a", 0), subtask("b", 0, StepStatus.FAILED)], 0, None)
    spent = workflow.after_wave([subtask("a", 0)], 0, "the task's budget of 10 tokens is spent")

    assert failed == workflow.FailTask("subtask b failed: it broke")
    assert spent == workflow.FailTask("the task's budget of 10 tokens is spent")


@pytest.mark.parametrize(
    ("score", "iteration", "expected"),
    [
        (0.9, 1, workflow.Finish("quality threshold met")),
        (0.5, 3, workflow.Finish("iteration budget spent")),
        (0.5, 1, workflow.Revise(2)),
    ],
)
def test_after_a_review_the_task_finishes_or_revises(
    score: float, iteration: int, expected: workflow.AfterReview
) -> None:
    config = NetworkConfig(quality_threshold=0.8, max_iterations=3)

    assert workflow.after_review(score, iteration, config) == expected


def task_in(status: TaskStatus, wave: int = 0) -> Task:
    task = Task.create(
        tenant_id="acme", network_id=uuid4(), description="d", context={},
        priority=Priority.NORMAL, timeout_seconds=60, now=NOW,
    )  # fmt: skip
    task.status, task.wave = status, wave
    return task


def test_a_stalled_task_is_sent_again_only_what_it_lacks() -> None:
    plan = [subtask("a", 0), subtask("b", 1, None)]

    assert workflow.redrive_action(task_in(TaskStatus.PLANNING), plan) == "coordinate"
    assert workflow.redrive_action(task_in(TaskStatus.RUNNING), []) == "coordinate"
    assert workflow.redrive_action(task_in(TaskStatus.RUNNING, wave=0), plan) == "collect"
    assert workflow.redrive_action(task_in(TaskStatus.RUNNING, wave=1), plan) == "wave"
    assert workflow.redrive_action(task_in(TaskStatus.SYNTHESIZING), plan) == "collect"
    assert workflow.redrive_action(task_in(TaskStatus.REVIEWING), plan) == "review"


def test_a_result_keeps_the_answer_and_an_early_end_keeps_only_completed_work() -> None:
    steps = [step("@plan"), step("a"), step("b", StepStatus.FAILED), step("@synthesis")]

    full = workflow.result_of(
        answer="the answer", iteration=2, merged=workflow.contributions(steps)
    )
    partial = workflow.kept_result(None, steps)

    assert [c.subtask for c in full.contributions or ()] == ["a", "b"]
    assert (full.answer, full.iteration, full.partial) == ("the answer", 2, False)
    assert partial == TaskResult(
        contributions=(Contribution(subtask="a", agent="research", output="a done"),),
        partial=True,
    )


def test_an_early_end_keeps_the_last_answer_and_verdict_with_the_completed_work() -> None:
    steps = [step("a"), step("b", StepStatus.FAILED)]
    reviewed = workflow.result_of(
        answer="the answer", iteration=1, merged=workflow.contributions(steps)
    ).with_review(0.4, "shorter")

    kept = workflow.kept_result(reviewed, [step("a"), step("c", StepStatus.FAILED)])

    assert kept == TaskResult(
        answer="the answer",
        iteration=1,
        contributions=(Contribution(subtask="a", agent="research", output="a done"),),
        score=0.4,
        feedback="shorter",
        partial=True,
    )


def test_a_verdict_below_the_threshold_starts_a_revision_and_keeps_the_feedback() -> None:
    task = task_in(TaskStatus.REVIEWING)
    task.iteration = 1
    config = NetworkConfig(quality_threshold=0.8, max_iterations=3)

    decided = workflow.conclude_review(task, 0.5, "add a call to action", config, NOW)

    assert decided == workflow.Revise(2)
    assert (task.status, task.iteration) == (TaskStatus.RUNNING, 2)
    assert task.result == TaskResult(score=0.5, feedback="add a call to action")
    assert task.result.to_json() == {"score": 0.5, "feedback": "add a call to action"}


def test_only_a_plan_no_one_approved_waits_and_the_history_is_read_only_then() -> None:
    asks = NetworkConfig(approval=Approval(plan=True))
    reads: list[int] = []

    def history() -> list[HistoryEntry]:
        reads.append(1)
        return []

    assert workflow.awaits_approval(task_in(TaskStatus.PLANNING), asks, history)
    assert not workflow.awaits_approval(task_in(TaskStatus.PLANNING), NetworkConfig(), history)
    assert not workflow.awaits_approval(task_in(TaskStatus.REVIEWING), asks, history)
    assert reads == []
    assert workflow.awaits_approval(task_in(TaskStatus.RUNNING), asks, history)
    assert reads == [1]
