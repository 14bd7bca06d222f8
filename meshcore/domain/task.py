"""Tasks, their state machine, the subtasks a plan makes of them and the steps agents record."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from meshcore.domain.errors import Conflict, InvalidInput, InvalidTransition
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.result import TaskResult
from meshcore.domain.usage import Usage
from meshcore.domain.webhooks import Webhook

MAX_DESCRIPTION = 10_000
# How much of a step's output its event carries: enough to follow, never the whole answer.
EXCERPT_CHARS = 500

# Step keys the coordinator and critic use; plan keys cannot start with "@", so none collide.
PLAN_KEY = "@plan"
SYNTHESIS_KEY = "@synthesis"
REVIEW_KEY = "@review"


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"  # planned; a person approves (or edits) the plan
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
    TaskStatus.PLANNING: frozenset({TaskStatus.RUNNING, TaskStatus.AWAITING_APPROVAL, *_ENDINGS}),
    # Nothing runs while a plan waits: a person approves it (running) or rejects it.
    TaskStatus.AWAITING_APPROVAL: frozenset({TaskStatus.RUNNING, *_ENDINGS}),
    # A revision's plan is made while running; then it may await approval too.
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.SYNTHESIZING, TaskStatus.AWAITING_APPROVAL, *_ENDINGS}
    ),
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


class EventKind(enum.StrEnum):
    """What a line of a task's history (an event of its log) says happened."""

    TRANSITION = "transition"  # a status change
    STEP = "step"  # a step was recorded (finished)
    STEP_START = "step_start"  # a step began: its model call is about to be made
    PLAN = "plan"  # an iteration's subtasks were planned
    WAVE = "wave"  # the next wave of the iteration was dispatched
    VERDICT = "verdict"  # the critic scored the synthesis
    RECOVERY = "recovery"  # the sweeper re-drove a stalled task
    RELEASED = "released"  # a held task was released for processing
    WEBHOOK = "webhook"  # a webhook delivery was attempted (the one kind after the end)
    TOOL_CALL = "tool_call"  # a step called a tool (or replayed a call already made)


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a task's log: a status transition, a step begun or recorded, a plan..."""

    at: datetime
    kind: str  # an EventKind
    status: TaskStatus  # the task's status when it happened
    agent: str | None = None
    queue: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    seq: int = 0  # its number in the task's log, from 1; 0 until it is recorded

    @property
    def type(self) -> str:
        """The event's public name, as the event stream and webhooks give it."""
        return event_type(self)


def event_type(entry: HistoryEntry) -> str:
    """`task.completed` (and failed, cancelled, timed_out) for an ending,
    `task.awaiting_approval` for a plan that waits for a person, `task.status` for any other
    status change, `step.started`, `step.finished`, `critic.verdict`, `task.plan`..."""
    if entry.kind == EventKind.TRANSITION:
        if entry.status.is_terminal or entry.status is TaskStatus.AWAITING_APPROVAL:
            return f"task.{entry.status.value}"
        return "task.status"
    return _EVENT_TYPES.get(entry.kind, f"task.{entry.kind}")


_EVENT_TYPES = {
    EventKind.STEP: "step.finished",
    EventKind.STEP_START: "step.started",
    EventKind.PLAN: "task.plan",
    EventKind.WAVE: "task.wave",
    EventKind.VERDICT: "critic.verdict",
    EventKind.RECOVERY: "task.recovery",
    EventKind.RELEASED: "task.released",
    EventKind.WEBHOOK: "webhook.attempt",
}


@dataclass(frozen=True)
class StepRecord:
    """The recorded outcome of one step, keyed by (task, iteration, key); the first one wins."""

    task_id: UUID
    iteration: int
    key: str
    agent_type: str
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
    agent_version: int = 1  # the version of its agent type it ran with


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
    revision: int = 0  # the number of its latest recorded event: moves on every change
    result: TaskResult | None = None  # made by the workflow only (meshcore.domain.workflow)
    error: str | None = None
    usage: Usage = Usage()
    webhook: Webhook | None = None  # its own, else its network's, as of its submission
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
        webhook: Webhook | None = None,
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
            webhook=webhook,
        )
        task._record(
            HistoryEntry(now, EventKind.TRANSITION, TaskStatus.QUEUED, detail={"from": None})
        )
        return task

    def transition(self, target: TaskStatus, *, now: datetime, **detail: object) -> None:
        """Move to `target` or raise InvalidTransition; the change joins the history."""
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, target)
        entry = HistoryEntry(
            now, EventKind.TRANSITION, target, detail={"from": self.status.value, **detail}
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
        self._record(HistoryEntry(now, EventKind.RELEASED, self.status))

    def advance_wave(self, *, now: datetime) -> None:
        """The current wave is done; the next one is being dispatched."""
        self.wave += 1
        self.updated_at = self.heartbeat_at = now
        detail = {"iteration": self.iteration, "wave": self.wave}
        self._record(HistoryEntry(now, EventKind.WAVE, self.status, detail=detail))

    def record_verdict(self, *, score: float, feedback: str, now: datetime) -> None:
        """The critic's verdict on this iteration's synthesis, before what follows from it."""
        detail = {"iteration": self.iteration, "score": score, "feedback": feedback}
        self._record(HistoryEntry(now, EventKind.VERDICT, self.status, detail=detail))

    def check_cancellable(self) -> None:
        """Raise Conflict for a task that has ended: only an unfinished task can be cancelled."""
        if self.status.is_terminal:
            raise Conflict(
                f"task {self.id} is {self.status}; only an unfinished task can be cancelled"
            )

    def await_approval(
        self, subtasks: list[Subtask], *, now: datetime, timeout_seconds: int
    ) -> None:
        """The iteration's plan is stored and waits for a person: its deadline is the
        approval's, and the transition's detail carries the plan."""
        self.transition(
            TaskStatus.AWAITING_APPROVAL,
            now=now,
            iteration=self.iteration,
            subtasks=[
                {
                    "key": s.key,
                    "agent": str(s.planned.agent_type),
                    "agent_version": s.planned.agent_version,
                    "description": s.planned.description,
                    "depends_on": list(s.planned.depends_on),
                    "wave": s.wave,
                }
                for s in subtasks
            ],
            timeout_seconds=timeout_seconds,
        )
        self.deadline_at = now + timedelta(seconds=timeout_seconds)

    def check_awaiting_approval(self, action: str) -> None:
        """Raise Conflict unless the task's plan waits for approval."""
        if self.status is not TaskStatus.AWAITING_APPROVAL:
            raise Conflict(
                f"task {self.id} is {self.status}; only a task awaiting approval of its plan"
                f" can be {action}"
            )

    def approve(self, *, now: datetime, timeout_seconds: int, edited: bool) -> None:
        """A person approved the waiting plan (`edited`: as they changed it): the task runs,
        with the network's timeout from now."""
        self.check_awaiting_approval("approved")
        self.transition(
            TaskStatus.RUNNING,
            now=now,
            reason="plan approved",
            iteration=self.iteration,
            edited=edited,
        )
        self.deadline_at = now + timedelta(seconds=timeout_seconds)

    def start_revision(self, *, now: datetime) -> None:
        self.iteration += 1
        self.wave = 0
        self.heartbeat_at = now

    def record_recovery(self, *, now: datetime, action: str) -> None:
        """The sweeper found the task stalled and re-drove it from the record."""
        self._record(
            HistoryEntry(
                now,
                EventKind.RECOVERY,
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


def is_approval_of(entry: HistoryEntry, iteration: int) -> bool:
    """Whether the entry says a person approved the plan of `iteration`."""
    return (
        entry.kind == EventKind.TRANSITION
        and entry.status is TaskStatus.RUNNING
        and entry.detail.get("from") == TaskStatus.AWAITING_APPROVAL.value
        and entry.detail.get("iteration") == iteration
    )


def step_entry(step: StepRecord, status: TaskStatus, *, now: datetime) -> HistoryEntry:
    """The history line a recorded step adds to its task, which was in `status` then."""
    return HistoryEntry(
        now,
        EventKind.STEP,
        status,
        agent=str(step.agent_type),
        queue=step.queue,
        detail={
            "iteration": step.iteration,
            "subtask": step.key,
            "agent_version": step.agent_version,
            "status": step.status.value,
            "model": step.model,
            "latency_ms": round(step.latency_ms, 1),
            "input_tokens": step.usage.input_tokens,
            "output_tokens": step.usage.output_tokens,
            "cost_usd": step.usage.cost_usd,
            "worker": step.worker,
            "attempt": step.attempt,
            "excerpt": step.output[:EXCERPT_CHARS],
            "error": step.error,
        },
    )


def step_start_entry(
    *,
    iteration: int,
    key: str,
    agent_type: str,
    queue: str,
    attempt: int,
    status: TaskStatus,
    now: datetime,
) -> HistoryEntry:
    """The history line of a step whose model call is about to be made."""
    detail = {"iteration": iteration, "subtask": key, "attempt": attempt}
    return HistoryEntry(
        now, EventKind.STEP_START, status, agent=str(agent_type), queue=queue, detail=detail
    )


def plan_entry(
    subtasks: list[tuple[PlannedSubtask, int]],
    *,
    iteration: int,
    status: TaskStatus,
    now: datetime,
) -> HistoryEntry:
    """The history line of an iteration's plan: each subtask with its wave (from 0)."""
    detail = {
        "iteration": iteration,
        "subtasks": [
            {
                "key": s.key,
                "agent": str(s.agent_type),
                "agent_version": s.agent_version,
                "depends_on": list(s.depends_on),
                "wave": wave,
            }
            for s, wave in subtasks
        ],
    }
    return HistoryEntry(now, EventKind.PLAN, status, detail=detail)


@dataclass(frozen=True)
class Revision:
    """Where a task stands, in two words: its revision and its status."""

    revision: int
    status: TaskStatus


@dataclass(frozen=True)
class TaskChange:
    """A task changed in a transaction that committed: what live notifications carry."""

    tenant_id: str
    network_id: UUID
    task_id: UUID
    revision: int
    status: TaskStatus


@dataclass(frozen=True)
class TaskSummary:
    """A task in a few fields, for polls that need no history."""

    id: UUID
    network_id: UUID
    status: TaskStatus
    revision: int
    iteration: int
    wave: int
    steps_done: int
    steps_planned: int
    answer: str | None = None
    score: float | None = None


# How much of a tool call's arguments its event carries.
TOOL_ARGUMENTS_CHARS = 300
_EVENT_TYPES[EventKind.TOOL_CALL] = "tool.called"


def tool_call_entry(
    *,
    iteration: int,
    key: str,
    agent_type: str,
    server: str,
    tool: str,
    arguments: str,
    outcome: str,
    latency_ms: float,
    now: datetime,
    repeated: bool = False,
) -> HistoryEntry:
    """The history line of a step's tool call: `outcome` is ok, error (the tool said so),
    replayed (recorded before, not called again) or in_doubt (may have run; not repeated).
    `repeated`: a call in doubt made again, its tool being idempotent."""
    detail = {
        "iteration": iteration,
        "subtask": key,
        "server": server,
        "tool": tool,
        "arguments": arguments[:TOOL_ARGUMENTS_CHARS],
        "outcome": outcome,
        "latency_ms": round(latency_ms, 1),
        "repeated": repeated,
    }
    # The status is the one the task's row holds when it is appended.
    return HistoryEntry(
        now, EventKind.TOOL_CALL, TaskStatus.QUEUED, agent=str(agent_type), detail=detail
    )
