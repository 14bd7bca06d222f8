"""The step log: a step's lease and start, its first recorded result, and what it writes to
shared memory. The first write under (task, iteration, key) wins; a later one is discarded."""

from __future__ import annotations

import enum
from uuid import UUID

import structlog

from meshcore.agents import BUILTINS, AgentProfile
from meshcore.domain.errors import TaskEnded
from meshcore.domain.memory import MemoryItem
from meshcore.domain.network import Network
from meshcore.domain.task import StepRecord, StepStatus, Task, TaskStatus, step_start_entry
from meshcore.ports import Clock, UnitOfWorkFactory
from meshcore.services.memory_view import MemoryView
from meshcore.services.memory_writes import Written
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)


class Skipped(enum.Enum):
    """Why an attempt made no step: not a failure, and nothing to record. Either way the
    message that asked for it does nothing more."""

    LEASED_ELSEWHERE = "leased elsewhere"  # another attempt holds the lease, still running
    TASK_ENDED = "task ended"  # ended (or past its deadline): the step is wanted no more


# A step (completed or failed), or why this attempt made none.
StepOutcome = StepRecord | Skipped


class StepLog:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        memory: MemoryView,
        clock: Clock,
        lease_seconds: float,
        max_attempts: int,
    ) -> None:
        self._tenant_id, self._uow, self._memory, self._clock = tenant_id, uow, memory, clock
        self._lease_seconds, self._max_attempts = lease_seconds, max_attempts

    def record(
        self, step: StepRecord, network_id: UUID, item: MemoryItem | None = None
    ) -> StepRecord:
        """Record a step (first write wins); the winner's usage, history and memory go with it.

        A step that finishes after its task ended (cancelled while the model answered) is
        discarded whole, and returned as it came: the task's result takes no more work.
        """
        written: Written | None = None
        try:
            with self._uow(self._tenant_id) as uow:
                stored, is_new = uow.steps.record(step)
                if is_new:
                    # Last, the rows other transactions update too, always in this order: the
                    # task's (its other steps), the memory items a restatement raises (the
                    # critic's verdict and a rating lock them after the task's row too), and
                    # the agent's (every task's steps of its type).
                    uow.tasks.add_step(step, now=self._clock.now())
                    if item is not None:
                        written = self._memory.write(uow, item)
                    # A step made a model call if it names a model or spent time failing in
                    # the chain; a client's plan, a budget refusal or a missing agent made none.
                    if step.model is not None or step.latency_ms > 0:
                        uow.agents.record_call(
                            network_id,
                            step.agent_type,
                            latency_ms=step.latency_ms,
                            usage=step.usage,
                            is_failure=step.status is StepStatus.FAILED,
                        )
                uow.commit()
        except TaskEnded as exc:
            log.info(
                "step.discarded",
                task_id=str(step.task_id),
                iteration=step.iteration,
                subtask=step.key,
                task_status=str(exc.status),
            )
            return step
        if is_new:
            _count_recorded(step)
        if written is not None:
            self._memory.published(written)
        log.info(
            "step.recorded" if is_new else "step.duplicate_discarded",
            task_id=str(step.task_id),
            iteration=step.iteration,
            subtask=step.key,
            agent=str(step.agent_type),
            queue=step.queue,
            status=stored.status.value,
        )
        return stored

    def memory_item(
        self, task: Task, network: Network, step: StepRecord, profile: AgentProfile
    ) -> MemoryItem | None:
        """What a completed step writes to shared memory, typed by its agent's profile."""
        if step.status is not StepStatus.COMPLETED:
            return None
        agent = network.agent_of(step.agent_type)
        return MemoryItem.create(
            tenant_id=self._tenant_id,
            network_id=network.id,
            type=profile.writes,
            content=step.output[:20_000],
            confidence=profile.confidence,
            now=self._clock.now(),
            metadata={
                "source_agent": str(step.agent_type),
                "agent_id": str(agent.id) if agent else None,
                "task_id": str(task.id),
                "subtask": step.key,
                "iteration": step.iteration,
            },
        )

    def begin(
        self, task: Task, iteration: int, key: str, agent_type: str, queue: str
    ) -> int | Skipped:
        """Lease the step, count the attempt and note its start in the task's log, in one
        transaction: the attempt's number, or Skipped if another attempt holds the lease or
        the task has ended.

        The start takes the task's row lock, as a cancel does: once a cancel has committed,
        no step begins a model call.
        """
        now = self._clock.now()
        try:
            with self._uow(self._tenant_id) as uow:
                attempt = uow.steps.begin_attempt(
                    task.id, iteration, key, now=now, lease_seconds=self._lease_seconds
                )
                if attempt is not None and attempt <= self._max_attempts:
                    entry = step_start_entry(
                        iteration=iteration,
                        key=key,
                        agent_type=agent_type,
                        queue=queue,
                        attempt=attempt,
                        status=TaskStatus.QUEUED,  # the status the row holds replaces it
                        now=now,
                    )
                    uow.tasks.begin_step(entry, task.id, now=now)
                uow.commit()
        except TaskEnded as exc:
            log.info("step.not_begun", task_id=str(task.id), subtask=key, task_status=exc.status)
            return Skipped.TASK_ENDED
        return Skipped.LEASED_ELSEWHERE if attempt is None else attempt


def _count_recorded(step: StepRecord) -> None:
    """A step's outcome, once: only the first recording of a key counts."""
    outcome = "succeeded" if step.status is StepStatus.COMPLETED else "failed"
    metrics.subtasks.labels(metric_label(step.agent_type), step.queue, outcome).inc()
    if step.latency_ms > 0:
        metrics.subtask_duration.labels(metric_label(step.agent_type), step.queue).observe(
            step.latency_ms / 1000
        )


def metric_label(agent_type: str) -> str:
    """A built-in type's name, else "custom": tenants' own names would grow the series."""
    return agent_type if agent_type in BUILTINS else "custom"
