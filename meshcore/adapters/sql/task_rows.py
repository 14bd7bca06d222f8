"""A task as rows: the task itself, its event log and its plans' subtasks; the statements
that read and change them, rows to objects and back. The task's words, context, plan, result
and error, an event's detail and a subtask's description are sealed.
"""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.rows import Row, aware, maybe_aware
from meshcore.adapters.sql.steps import STEP_COLUMNS, joined_step
from meshcore.adapters.sql.tables import steps, subtasks, task_events, tasks
from meshcore.domain.plan import Plan, PlannedSubtask, parse_plan, plan_to_json
from meshcore.domain.result import TaskResult
from meshcore.domain.task import (
    HistoryEntry,
    Priority,
    Subtask,
    Task,
    TaskStatus,
    TaskSummary,
    Usage,
)
from meshcore.domain.webhooks import Webhook

p = sa.bindparam

# --- the task ---------------------------------------------------------------------------
# One statement per way of reading a task, so that a locked read cannot lose its lock to
# another option: each is chosen by name in SqlTaskRepository.
TASK = tasks.select().where(tasks.c.id == p("p_id"), tasks.c.tenant_id == p("p_tenant"))
TASK_IN_NETWORK = TASK.where(tasks.c.network_id == p("p_network"))
# FOR NO KEY UPDATE: it serialises writers of the task yet does not wait on the KEY SHARE
# locks that inserting steps and events (foreign keys) take.
TASK_LOCKED = TASK.with_for_update(key_share=True)
TASK_IN_NETWORK_LOCKED = TASK_IN_NETWORK.with_for_update(key_share=True)
# The SET clause comes from the parameters given (task_state, or heartbeat_at).
UPDATE_TASK = tasks.update().where(tasks.c.id == p("p_id"), tasks.c.tenant_id == p("p_tenant"))
# Every change a client can see moves the revision by the events it adds, under the row lock
# the UPDATE takes: numbers are handed out in commit order, and a rollback returns them.
_BUMPED = (tasks.c.revision, tasks.c.status, tasks.c.network_id)
_NEXT_REVISION = tasks.c.revision + p("p_n", type_=sa.Integer)
# The rest of the SET clause comes from the parameters (task_state, heartbeat_at).
BUMP_TASK = UPDATE_TASK.values(revision=_NEXT_REVISION).returning(*_BUMPED)
ADD_USAGE = UPDATE_TASK.values(
    input_tokens=tasks.c.input_tokens + p("p_input_tokens", type_=sa.BigInteger),
    output_tokens=tasks.c.output_tokens + p("p_output_tokens", type_=sa.BigInteger),
    cost_usd=tasks.c.cost_usd + p("p_cost_usd", type_=sa.Float),
    heartbeat_at=p("p_now", type_=tasks.c.heartbeat_at.type),
    revision=_NEXT_REVISION,
).returning(*_BUMPED)
_THE_TASK_IN_NETWORK = sa.and_(
    tasks.c.id == p("p_id"),
    tasks.c.tenant_id == p("p_tenant"),
    tasks.c.network_id == p("p_network"),
)
REVISION = sa.select(tasks.c.revision, tasks.c.status).where(_THE_TASK_IN_NETWORK)
# A task in a few fields: its current iteration's steps planned and recorded, counted here.
_PLANNED = (
    sa.select(sa.func.count())
    .where(subtasks.c.task_id == tasks.c.id, subtasks.c.iteration == tasks.c.iteration)
    .scalar_subquery()
)
_DONE = (
    sa.select(sa.func.count())
    .where(
        steps.c.task_id == tasks.c.id,
        steps.c.iteration == tasks.c.iteration,
        sa.not_(steps.c.key.startswith("@")),
    )
    .scalar_subquery()
)
SUMMARY = sa.select(
    tasks.c.id,
    tasks.c.network_id,
    tasks.c.status,
    tasks.c.revision,
    tasks.c.iteration,
    tasks.c.wave,
    tasks.c.result,
    _PLANNED.label("planned"),
    _DONE.label("done"),
).where(_THE_TASK_IN_NETWORK)


def task_row(task: Task, sealer: Sealer) -> dict[str, object]:
    return {
        "id": task.id,
        "tenant_id": task.tenant_id,
        "network_id": task.network_id,
        "description": sealer.seal(task.description),
        "context": sealer.seal_json(task.context),
        "priority": task.priority.value,
        "plan": sealer.seal_json(plan_to_json(task.plan)) if task.plan is not None else None,
        "created_at": task.created_at,
        "revision": task.revision,
        "webhook": task.webhook.to_json() if task.webhook is not None else None,
        **task_state(task, sealer),
    }


def task_state(task: Task, sealer: Sealer) -> dict[str, object]:
    """The columns that change as a task runs."""
    return {
        "status": task.status.value,
        "iteration": task.iteration,
        "wave": task.wave,
        "heartbeat_at": task.heartbeat_at,
        "held": task.is_held,
        "result": sealer.seal_json(task.result.to_json()) if task.result is not None else None,
        "error": sealer.seal(task.error) if task.error is not None else None,
        "input_tokens": task.usage.input_tokens,
        "output_tokens": task.usage.output_tokens,
        "cost_usd": task.usage.cost_usd,
        "updated_at": task.updated_at,
        # Moves when a plan starts waiting for approval, and again when it is approved.
        "deadline_at": task.deadline_at,
    }


def task_from_row(row: Row, sealer: Sealer) -> Task:
    plan = sealer.open_json(row["plan"])
    result = TaskResult.from_json(sealer.open_json(row["result"]))
    return Task(
        id=row["id"],
        tenant_id=row["tenant_id"],
        network_id=row["network_id"],
        description=sealer.open(row["description"]),
        context=sealer.open_json(row["context"]),
        priority=Priority(row["priority"]),
        status=TaskStatus(row["status"]),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        deadline_at=aware(row["deadline_at"]),
        plan=parse_plan(plan) if plan is not None else None,
        iteration=row["iteration"],
        wave=row["wave"],
        heartbeat_at=maybe_aware(row["heartbeat_at"]),
        is_held=row["held"],
        revision=row["revision"],
        result=result,
        error=sealer.open(row["error"]) if row["error"] is not None else None,
        usage=Usage(row["input_tokens"], row["output_tokens"], row["cost_usd"]),
        webhook=Webhook.from_json(row["webhook"]),
    )


def summary_from_row(row: Row, sealer: Sealer) -> TaskSummary:
    """A row of SUMMARY."""
    result = sealer.open_json(row["result"]) or {}
    answer, score = result.get("answer"), result.get("score")
    return TaskSummary(
        id=row["id"],
        network_id=row["network_id"],
        status=TaskStatus(row["status"]),
        revision=row["revision"],
        iteration=row["iteration"],
        wave=row["wave"],
        steps_done=row["done"],
        steps_planned=row["planned"],
        answer=answer if isinstance(answer, str) else None,
        score=float(score) if isinstance(score, int | float) else None,
    )


# --- its event log ----------------------------------------------------------------------
HISTORY = (
    task_events.select()
    .where(task_events.c.task_id == p("p_task"), task_events.c.tenant_id == p("p_tenant"))
    .order_by(task_events.c.seq, task_events.c.id)
)
EVENTS = HISTORY.where(task_events.c.seq > p("p_after", type_=sa.Integer)).limit(
    p("p_limit", type_=sa.Integer)
)


def event_row(
    tenant_id: str, task_id: UUID, entry: HistoryEntry, sealer: Sealer
) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "task_id": task_id,
        "at": entry.at,
        "kind": entry.kind,
        "status": entry.status.value,
        "agent": entry.agent,
        "queue": entry.queue,
        # Sealed: a reason quotes a failed step's error, which may quote the task.
        "detail": sealer.seal_json(entry.detail),
        "seq": entry.seq,
    }


def event_from_row(row: Row, sealer: Sealer) -> HistoryEntry:
    return HistoryEntry(
        at=aware(row["at"]),
        kind=row["kind"],
        status=TaskStatus(row["status"]),
        agent=row["agent"],
        queue=row["queue"],
        detail=sealer.open_json(row["detail"]),
        seq=row["seq"] or 0,
    )


# --- its plans' subtasks, each with its step once one is recorded -----------------------
_SUBTASKS_OF_TASK = (
    sa.select(subtasks, *STEP_COLUMNS)
    .select_from(
        subtasks.outerjoin(
            steps,
            sa.and_(
                steps.c.task_id == subtasks.c.task_id,
                steps.c.iteration == subtasks.c.iteration,
                steps.c.key == subtasks.c.key,
            ),
        )
    )
    .where(subtasks.c.task_id == p("p_task"), subtasks.c.tenant_id == p("p_tenant"))
)
SUBTASKS = _SUBTASKS_OF_TASK.where(subtasks.c.iteration == p("p_iteration")).order_by(
    subtasks.c.position
)
SUBTASK = SUBTASKS.where(subtasks.c.key == p("p_key"))
# Every iteration's subtasks in one statement, so a task's read costs the same after revisions.
EVERY_SUBTASK = _SUBTASKS_OF_TASK.order_by(
    subtasks.c.iteration, subtasks.c.wave, subtasks.c.position
)


def plan_rows(
    tenant_id: str, task_id: UUID, iteration: int, plan: Plan, sealer: Sealer
) -> list[dict[str, object]]:
    return [
        {
            "task_id": task_id,
            "iteration": iteration,
            "key": s.key,
            "tenant_id": tenant_id,
            "position": position,
            "wave": plan.wave_of(s.key),
            "depends_on": list(s.depends_on),
            "agent_type": str(s.agent_type),
            "agent_version": s.agent_version,
            "queue": s.queue or None,
            "description": sealer.seal(s.description),
        }
        for position, s in enumerate(plan.subtasks)
    ]


def subtask_from_row(row: Row, sealer: Sealer) -> Subtask:
    """A row of SUBTASKS, SUBTASK or EVERY_SUBTASK."""
    planned = PlannedSubtask(
        key=row["key"],
        agent_type=row["agent_type"],
        description=sealer.open(row["description"]),
        depends_on=tuple(row["depends_on"]),
        agent_version=row["agent_version"],
        queue=row["queue"] or "",
    )
    step = joined_step(row, sealer)
    return Subtask(row["task_id"], row["iteration"], row["wave"], planned, step)
