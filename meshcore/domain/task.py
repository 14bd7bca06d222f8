"""Tasks, their state machine, the subtasks a plan makes of them and the steps agents record."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from meshcore.domain.errors import Conflict, InvalidInput, InvalidTransition
from meshcore.domain.network import AgentType
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.usage import Usage

MAX_DESCRIPTION = 10_000

# Step keys the coordinator and critic use; plan keys cannot start with "@", so none collide.
PLAN_KEY = "@plan"
SYNTHESIS_KEY = "@synthesis"
REVIEW_KEY = "@review"


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    PLANNING = "planning"
    RUNNING = "running"
    SYNTHESIZING = "synthesizing"
    REVIEWING = "reviewing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}
)
_ENDINGS = {TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset({TaskStatus.PLANNING, *_ENDINGS}),
    TaskStatus.PLANNING: frozenset({TaskStatus.RUNNING, *_ENDINGS}),
    TaskStatus.RUNNING: frozenset({TaskStatus.SYNTHESIZING, *_ENDINGS}),
    TaskStatus.SYNTHESIZING: frozenset({TaskStatus.REVIEWING, *_ENDINGS}),
    # A revision goes back to running; otherwise the review ends the task.
    TaskStatus.REVIEWING: frozenset({TaskStatus.RUNNING, TaskStatus.COMPLETED, *_ENDINGS}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
    TaskStatus.TIMED_OUT: frozenset(),
}


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class StepStatus(enum.StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a task's history: a status transition or an agent step."""

    at: datetime
    kind: str  # "transition" or "step"
    status: TaskStatus
    agent: str | None = None
    queue: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """The recorded outcome of one step, keyed by (task, iteration, key); the first one wins."""

    task_id: UUID
    iteration: int
    key: str
    agent_type: AgentType
    queue: str
    status: StepStatus
    output: str
    recorded_at: datetime
    model: str | None = None
    usage: Usage = Usage()
    latency_ms: float = 0.0
    memory_read: tuple[str, ...] = ()
    error: str | None = None
    worker: str | None = None  # the Celery node that ran it, as the broker delivered it
    attempt: int = 1  # which attempt produced it (history only; the step log keeps the first)
    traceparent: str | None = None  # the span that ran it, for a synthesis to link to


@dataclass(frozen=True)
class Subtask:
    """A planned subtask of one iteration, with its step once one is recorded."""

    task_id: UUID
    iteration: int
    wave: int
    planned: PlannedSubtask
    step: StepRecord | None = None

    @property
    def key(self) -> str:
        return self.planned.key

    @property
    def status(self) -> str:
        return self.step.status.value if self.step else "pending"


@dataclass
class Task:
    """The aggregate a client submits; status changes go through `transition`."""

    id: UUID
    tenant_id: str
    network_id: UUID
    description: str
    context: dict[str, object]
    priority: Priority
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    deadline_at: datetime
    plan: list[PlannedSubtask] | None = None  # a plan the client supplied, already validated
    iteration: int = 0
    wave: int = 0  # the wave of the current iteration that has been dispatched
    heartbeat_at: datetime | None = None  # the last sign of progress the sweeper looks for
    is_held: bool = False  # submitted with auto_process false and not processed yet
    result: dict[str, object] | None = None
    error: str | None = None
    usage: Usage = Usage()
    subtasks: list[Subtask] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    new_history: list[HistoryEntry] = field(default_factory=list, repr=False)

    @classmethod
    def create(
        cls,
        *,
        tenant_id: str,
        network_id: UUID,
        description: str,
        context: dict[str, object],
        priority: Priority,
        timeout_seconds: int,
        now: datetime,
        plan: list[PlannedSubtask] | None = None,
        is_held: bool = False,
    ) -> Task:
        if not description.strip():
            raise InvalidInput("description", "must not be empty")
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInput("description", f"must be at most {MAX_DESCRIPTION} characters")
        task = cls(
            id=uuid4(),
            tenant_id=tenant_id,
            network_id=network_id,
            description=description.strip(),
            context=context,
            priority=priority,
            status=TaskStatus.QUEUED,
            created_at=now,
            updated_at=now,
            deadline_at=now + timedelta(seconds=timeout_seconds),
            plan=plan,
            heartbeat_at=now,
            is_held=is_held,
        )
        task._record(HistoryEntry(now, "transition", TaskStatus.QUEUED, detail={"from": None}))
        return task

    def transition(self, target: TaskStatus, *, now: datetime, **detail: object) -> None:
        """Move to `target` or raise InvalidTransition; the change joins the history."""
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, target)
        entry = HistoryEntry(
            now, "transition", target, detail={"from": self.status.value, **detail}
        )
        self.status = target
        self.updated_at = self.heartbeat_at = now
        self._record(entry)

    def release(self, *, now: datetime) -> None:
        """Let a task held with auto_process false start; a task is released once only."""
        if self.status is not TaskStatus.QUEUED:
            raise Conflict(f"task {self.id} is {self.status}; only a queued task can be processed")
        if not self.is_held:
            raise Conflict(
                f"task {self.id} was already released for processing; only a task held"
                " with auto_process false can be processed"
            )
        self.is_held = False
        # The sweeper times a stall from the heartbeat: the hold was no stall.
        self.updated_at = self.heartbeat_at = now

    def advance_wave(self, *, now: datetime) -> None:
        """The current wave is done; the next one is being dispatched."""
        self.wave += 1
        self.updated_at = self.heartbeat_at = now

    def start_revision(self, *, now: datetime) -> None:
        self.iteration += 1
        self.wave = 0
        self.heartbeat_at = now

    def record_recovery(self, *, now: datetime, action: str) -> None:
        """The sweeper found the task stalled and re-drove it from the record."""
        self._record(
            HistoryEntry(
                now,
                "recovery",
                self.status,
                detail={"action": action, "iteration": self.iteration, "wave": self.wave},
            )
        )
        self.heartbeat_at = now

    def is_past_deadline(self, now: datetime) -> bool:
        return now >= self.deadline_at

    def seconds_left(self, now: datetime) -> float:
        return max(0.0, (self.deadline_at - now).total_seconds())

    def _record(self, entry: HistoryEntry) -> None:
        self.history.append(entry)
        self.new_history.append(entry)


def step_entry(step: StepRecord, status: TaskStatus, *, now: datetime) -> HistoryEntry:
    """The history line a recorded step adds to its task, which was in `status` then."""
    return HistoryEntry(
        now,
        "step",
        status,
        agent=step.agent_type.value,
        queue=step.queue,
        detail={
            "iteration": step.iteration,
            "subtask": step.key,
            "status": step.status.value,
            "model": step.model,
            "latency_ms": round(step.latency_ms, 1),
            "worker": step.worker,
            "attempt": step.attempt,
        },
    )
