"""The workflow's decisions, from a task's recorded state: what comes after a wave, after a
review, and what a stalled task needs sent again. The services load the state, ask here,
then save and dispatch; nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from meshcore.domain.network import NetworkConfig
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.result import Contribution, TaskResult
from meshcore.domain.task import (
    HistoryEntry,
    StepRecord,
    StepStatus,
    Subtask,
    Task,
    TaskStatus,
    is_approval_of,
)


@dataclass(frozen=True)
class WaitForSteps:
    """The wave's fan-in came early (a step delivered twice): the sweeper finishes it."""

    missing: tuple[str, ...]


@dataclass(frozen=True)
class FailTask:
    reason: str


@dataclass(frozen=True)
class RunWave:
    subtasks: tuple[PlannedSubtask, ...]


@dataclass(frozen=True)
class Synthesise:
    pass


AfterWave = WaitForSteps | FailTask | RunWave | Synthesise


@dataclass(frozen=True)
class Finish:
    reason: str  # "quality threshold met" or "iteration budget spent"


@dataclass(frozen=True)
class Revise:
    iteration: int  # the next one


AfterReview = Finish | Revise


def waves_of(subtasks: Sequence[Subtask]) -> list[list[Subtask]]:
    """An iteration's subtasks by wave, from the first."""
    count = max((s.wave for s in subtasks), default=-1) + 1
    return [[s for s in subtasks if s.wave == w] for w in range(count)]


def after_wave(subtasks: Sequence[Subtask], wave: int, over_budget: str | None) -> AfterWave:
    """What follows the fan-in of `wave`: its steps all recorded, the next wave or the
    synthesis; a failed step or a spent budget fails the task (concurrent steps can cross
    the budget together: nothing more is spent then)."""
    waves = waves_of(subtasks)
    this = waves[wave]
    if missing := tuple(s.key for s in this if s.step is None):
        return WaitForSteps(missing)
    failed = [s for s in this if s.step is not None and s.step.status is StepStatus.FAILED]
    if over_budget is not None or failed:
        step = failed[0].step if failed else None
        return FailTask(over_budget or f"subtask {failed[0].key} failed: {step and step.error}")
    if wave + 1 < len(waves):
        return RunWave(tuple(s.planned for s in waves[wave + 1]))
    return Synthesise()


def after_review(score: float, iteration: int, config: NetworkConfig) -> AfterReview:
    """A good enough answer, or the last iteration's, finishes the task; else it revises."""
    if score >= config.quality_threshold:
        return Finish("quality threshold met")
    if iteration >= config.max_iterations:
        return Finish("iteration budget spent")
    return Revise(iteration + 1)


def conclude_review(
    task: Task, score: float, feedback: str, config: NetworkConfig, now: datetime
) -> AfterReview:
    """Apply the critic's verdict to the task: it completes, or goes round again."""
    task.result = (task.result or TaskResult()).with_review(score, feedback)
    task.record_verdict(score=score, feedback=feedback, now=now)
    decided = after_review(score, task.iteration, config)
    if isinstance(decided, Finish):
        task.transition(TaskStatus.COMPLETED, now=now, reason=decided.reason, score=score)
    else:
        task.transition(
            TaskStatus.RUNNING, now=now, reason="revision", score=score,
            iteration=decided.iteration,
        )  # fmt: skip
        task.start_revision(now=now)
    return decided


def awaits_approval(
    task: Task, config: NetworkConfig, history: Callable[[], Sequence[HistoryEntry]]
) -> bool:
    """Whether the task's current plan must wait for a person before it runs: the network
    asks for approval, and no one has approved this iteration's plan yet (a task planning,
    or running a revision it has only just planned). `history` is read only when needed."""
    if not config.approval.plan or task.status not in (TaskStatus.PLANNING, TaskStatus.RUNNING):
        return False
    if task.status is TaskStatus.PLANNING:
        return True
    return not any(is_approval_of(e, task.iteration) for e in history())


def redrive_action(task: Task, subtasks: Sequence[Subtask]) -> str:
    """What a stalled task needs sent again: `coordinate` (plan), `wave` (the current wave's
    missing steps), `collect` (its fan-in, or the synthesis) or `review`."""
    if task.status in (TaskStatus.QUEUED, TaskStatus.PLANNING) or not subtasks:
        return "coordinate"
    if task.status is TaskStatus.REVIEWING:
        return "review"
    if task.status is TaskStatus.SYNTHESIZING:
        return "collect"
    current = [s for s in subtasks if s.wave == task.wave]
    return "wave" if any(s.step is None for s in current) else "collect"


def contributions(steps: Sequence[StepRecord]) -> list[StepRecord]:
    """The specialists' steps a synthesis merges (not the plan, synthesis or review)."""
    return [s for s in steps if not s.key.startswith("@")]


def result_of(*, answer: str, iteration: int, merged: Sequence[StepRecord]) -> TaskResult:
    """The result of an iteration's synthesis: its answer and the contributions it merged."""
    return TaskResult(
        answer=answer, iteration=iteration, contributions=tuple(_contribution(s) for s in merged)
    )


def kept_result(result: TaskResult | None, steps: Sequence[StepRecord]) -> TaskResult:
    """What a task that ends early keeps of `result`: its last answer and verdict, if any,
    and of the current iteration's `steps` the contributions that completed."""
    completed = [s for s in contributions(steps) if s.status is StepStatus.COMPLETED]
    return (result or TaskResult()).kept_partial(_contribution(s) for s in completed)


def _contribution(step: StepRecord) -> Contribution:
    return Contribution(subtask=step.key, agent=str(step.agent_type), output=step.output)
