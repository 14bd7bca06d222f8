"""How a task ends early (failed, timed out, cancelled), keeping the work it has."""

from __future__ import annotations

import structlog

from meshcore.domain.task import Task, TaskStatus
from meshcore.domain.workflow import kept_result
from meshcore.ports import Clock, UnitOfWork
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)


def end(uow: UnitOfWork, clock: Clock, task: Task, status: TaskStatus, reason: str) -> None:
    """End a task with what it has: the last answer and this iteration's contributions."""
    steps = uow.steps.for_iteration(task.id, task.iteration) if task.iteration else []
    task.result = kept_result(task.result, steps)
    task.error = reason
    task.transition(status, now=clock.now(), reason=reason)
    uow.tasks.save(task)
    uow.commit()
    metrics.task_finished(status.value, task.created_at, clock.now())
    log.info("task.ended", task_id=str(task.id), status=status.value, reason=reason)


def time_out_if_due(uow: UnitOfWork, clock: Clock, task: Task) -> bool:
    """End the task `timed_out` if its deadline has passed; answers whether it did."""
    if not task.is_past_deadline(clock.now()):
        return False
    if task.status is TaskStatus.AWAITING_APPROVAL:
        # Its deadline is the approval's, counted from when the plan began to wait.
        waited = (task.deadline_at - task.updated_at).total_seconds()
        reason = f"timed out: no one approved the plan within {waited:.0f} s"
    else:
        timeout = (task.deadline_at - task.created_at).total_seconds()
        reason = f"timed out after {timeout:.0f} s"
    end(uow, clock, task, TaskStatus.TIMED_OUT, reason)
    return True
