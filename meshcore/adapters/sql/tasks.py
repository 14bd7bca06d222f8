"""Tasks, their event log and their plans' subtasks in the record; their rows are shaped in
task_rows.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Row

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.tables import subtasks, task_events, tasks, webhook_deliveries
from meshcore.adapters.sql.task_rows import (
    ADD_USAGE,
    BUMP_TASK,
    EVENTS,
    EVERY_SUBTASK,
    HISTORY,
    REVISION,
    SUBTASK,
    SUBTASKS,
    SUMMARY,
    TASK,
    TASK_IN_NETWORK,
    TASK_IN_NETWORK_LOCKED,
    TASK_LOCKED,
    UPDATE_TASK,
    event_from_row,
    event_row,
    plan_rows,
    subtask_from_row,
    summary_from_row,
    task_from_row,
    task_row,
    task_state,
)
from meshcore.adapters.sql.webhooks import delivery_row
from meshcore.domain.errors import NotFound, TaskEnded
from meshcore.domain.plan import Plan
from meshcore.domain.task import (
    HistoryEntry,
    Revision,
    StepRecord,
    Subtask,
    Task,
    TaskChange,
    TaskStatus,
    TaskSummary,
    plan_entry,
    step_entry,
)
from meshcore.ports import Page


class SqlTaskRepository(Repository):
    """Tasks and their event log. Each change that adds events moves the task's revision in
    the same UPDATE, and is noted in `changes` for the unit of work to announce once it has
    committed."""

    def __init__(
        self,
        connection: sa.Connection,
        tenant_id: str,
        sealer: Sealer,
        changes: dict[UUID, TaskChange],
        deliveries: list[UUID] | None = None,
    ) -> None:
        super().__init__(connection, tenant_id, sealer)
        self._changes = changes
        self._deliveries = deliveries if deliveries is not None else []

    def add(self, task: Task) -> None:
        task.revision = len(task.new_history)
        self._db.execute(tasks.insert().values(task_row(task, self._sealer)))
        self._append_new_history(task, task.network_id, 0)

    def get(self, task_id: UUID) -> Task:
        return self._one(TASK, task_id)

    def get_locked(self, task_id: UUID) -> Task:
        return self._one(TASK_LOCKED, task_id)

    def in_network(self, task_id: UUID, *, network_id: UUID) -> Task:
        return self._one(TASK_IN_NETWORK, task_id, p_network=network_id)

    def locked_in_network(self, task_id: UUID, *, network_id: UUID) -> Task:
        return self._one(TASK_IN_NETWORK_LOCKED, task_id, p_network=network_id)

    def _one(self, statement: sa.Select, task_id: UUID, **params: object) -> Task:
        params.update(p_id=task_id, p_tenant=self._tenant_id)
        row = self._db.execute(statement, params).mappings().first()
        if row is None:
            raise NotFound("task", task_id)
        return task_from_row(row, self._sealer)

    def list(
        self, network_id: UUID, page: Page, status: TaskStatus | None = None
    ) -> tuple[list[Task], int]:
        where = [tasks.c.tenant_id == self._tenant_id, tasks.c.network_id == network_id]
        if status is not None:
            where.append(tasks.c.status == status.value)
        total = self._db.execute(sa.select(sa.func.count()).select_from(tasks).where(*where))
        rows = self._db.execute(
            tasks.select()
            .where(*where)
            .order_by(tasks.c.created_at.desc(), tasks.c.id)
            .offset(page.offset)
            .limit(page.limit)
        ).mappings()
        return [task_from_row(r, self._sealer) for r in rows], total.scalar_one()

    def save(self, task: Task) -> None:
        params = {"p_id": task.id, "p_tenant": self._tenant_id, **task_state(task, self._sealer)}
        if not task.new_history:
            self._db.execute(UPDATE_TASK, params)
            return
        row = self._db.execute(BUMP_TASK, {**params, "p_n": len(task.new_history)}).first()
        if row is None:
            raise NotFound("task", task.id)
        task.revision = row.revision
        self._append_new_history(task, row.network_id, row.revision - len(task.new_history))

    def add_step(self, step: StepRecord, *, now: datetime) -> None:
        # Without loading or locking the task first: its steps record concurrently, and the
        # sums are increments in SQL, so none is lost.
        row = self._db.execute(
            ADD_USAGE,
            {
                "p_id": step.task_id,
                "p_tenant": self._tenant_id,
                "p_input_tokens": step.usage.input_tokens,
                "p_output_tokens": step.usage.output_tokens,
                "p_cost_usd": step.usage.cost_usd,
                "p_now": now,
                "p_n": 1,
            },
        ).first()
        self._append_bumped(step.task_id, row, step_entry(step, TaskStatus.QUEUED, now=now))

    def begin_step(self, entry: HistoryEntry, task_id: UUID, *, now: datetime) -> None:
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "heartbeat_at": now, "p_n": 1}
        self._append_bumped(task_id, self._db.execute(BUMP_TASK, params).first(), entry)

    def _append_bumped(self, task_id: UUID, row: Row | None, entry: HistoryEntry) -> None:
        """Append one event after an UPDATE that moved the revision; its status is the one
        the row held. TaskEnded (to roll back) if the task had ended."""
        if row is None:
            raise NotFound("task", task_id)
        status = TaskStatus(row.status)
        if status.is_terminal:
            raise TaskEnded(task_id, status)
        entry = replace(entry, status=status)
        self._append(task_id, row.network_id, status, [entry], row.revision - 1)

    def add_webhook_attempt(self, task_id: UUID, entry: HistoryEntry) -> None:
        """Append a webhook attempt's event: the one kind appended after the task ended."""
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "p_n": 1}
        row = self._db.execute(BUMP_TASK, params).first()
        if row is None:
            raise NotFound("task", task_id)
        status = TaskStatus(row.status)
        entries = [replace(entry, status=status)]
        self._append(task_id, row.network_id, status, entries, row.revision - 1)

    def touch(self, task_id: UUID, now: datetime) -> None:
        """Set the heartbeat without locking or loading the task (see the port)."""
        self._db.execute(
            UPDATE_TASK, {"p_id": task_id, "p_tenant": self._tenant_id, "heartbeat_at": now}
        )

    def history(self, task_id: UUID) -> list[HistoryEntry]:
        rows = self._db.execute(HISTORY, {"p_task": task_id, "p_tenant": self._tenant_id})
        return [event_from_row(r, self._sealer) for r in rows.mappings()]

    def events(self, task_id: UUID, *, after: int, limit: int) -> list[HistoryEntry]:
        params = {"p_task": task_id, "p_tenant": self._tenant_id, "p_after": after}
        rows = self._db.execute(EVENTS, {**params, "p_limit": limit})
        return [event_from_row(r, self._sealer) for r in rows.mappings()]

    def revision(self, task_id: UUID, *, network_id: UUID) -> Revision:
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "p_network": network_id}
        row = self._db.execute(REVISION, params).first()
        if row is None:
            raise NotFound("task", task_id)
        return Revision(row.revision, TaskStatus(row.status))

    def summary(self, task_id: UUID, *, network_id: UUID) -> TaskSummary:
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "p_network": network_id}
        row = self._db.execute(SUMMARY, params).mappings().first()
        if row is None:
            raise NotFound("task", task_id)
        return summary_from_row(row, self._sealer)

    def add_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        if not self._insert_absent(subtasks, self._plan_rows(task_id, iteration, plan)):
            return  # another delivery stored this plan, and noted it
        self._note_plan(task_id, iteration, plan, now=now)

    def replace_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        """Put `plan` in place of the iteration's subtasks, noting it in the log."""
        self._db.execute(
            subtasks.delete().where(
                subtasks.c.tenant_id == self._tenant_id,
                subtasks.c.task_id == task_id,
                subtasks.c.iteration == iteration,
            )
        )
        self._db.execute(subtasks.insert(), self._plan_rows(task_id, iteration, plan))
        self._note_plan(task_id, iteration, plan, now=now)

    def _plan_rows(self, task_id: UUID, iteration: int, plan: Plan) -> list[dict[str, object]]:
        return plan_rows(self._tenant_id, task_id, iteration, plan, self._sealer)

    def _note_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        planned = [(s, plan.wave_of(s.key)) for s in plan.subtasks]
        entry = plan_entry(planned, iteration=iteration, status=TaskStatus.QUEUED, now=now)
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "p_n": 1}
        self._append_bumped(task_id, self._db.execute(BUMP_TASK, params).first(), entry)

    def subtasks(self, task_id: UUID, iteration: int) -> list[Subtask]:
        return self._subtasks(SUBTASKS, task_id, p_iteration=iteration)

    def subtask(self, task_id: UUID, iteration: int, key: str) -> Subtask | None:
        found = self._subtasks(SUBTASK, task_id, p_iteration=iteration, p_key=key)
        return found[0] if found else None

    def every_subtask(self, task_id: UUID) -> list[Subtask]:
        return self._subtasks(EVERY_SUBTASK, task_id)

    def _subtasks(self, statement: sa.Select, task_id: UUID, **params: object) -> list[Subtask]:
        """The subtasks `statement` selects, each with its step if one is recorded."""
        params.update(p_task=task_id, p_tenant=self._tenant_id)
        rows = self._db.execute(statement, params).mappings()
        return [subtask_from_row(row, self._sealer) for row in rows]

    def _append_new_history(self, task: Task, network_id: UUID, last_seq: int) -> None:
        """Insert the task's new history numbered after `last_seq`; the task's own history
        shows the numbers too."""
        count = len(task.new_history)
        numbered = self._append(task.id, network_id, task.status, task.new_history, last_seq)
        task.history[len(task.history) - count :] = numbered
        task.new_history.clear()
        if task.webhook is not None:
            wanted = [e for e in numbered if task.webhook.wants(e.type)]
            self._add_deliveries(task.id, network_id, wanted)

    def _add_deliveries(
        self, task_id: UUID, network_id: UUID, entries: Sequence[HistoryEntry]
    ) -> None:
        """A delivery per event the webhook wants, in the event's own transaction."""
        if not entries:
            return
        rows = [delivery_row(self._tenant_id, task_id, network_id, e) for e in entries]
        self._db.execute(webhook_deliveries.insert(), rows)
        self._deliveries.extend(r["id"] for r in rows)

    def _append(
        self,
        task_id: UUID,
        network_id: UUID,
        status: TaskStatus,
        entries: Sequence[HistoryEntry],
        last_seq: int,
    ) -> list[HistoryEntry]:
        """Insert `entries` numbered after `last_seq`, and note the task's new revision;
        answers them numbered."""
        if not entries:
            return []
        numbered = [replace(e, seq=last_seq + i) for i, e in enumerate(entries, start=1)]
        rows = [event_row(self._tenant_id, task_id, e, self._sealer) for e in numbered]
        self._db.execute(task_events.insert(), rows)
        revision = last_seq + len(entries)
        self._changes[task_id] = TaskChange(self._tenant_id, network_id, task_id, revision, status)
        return numbered
