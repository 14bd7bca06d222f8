"""Repositories over SQLAlchemy Core. Every query is filtered by the tenant; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.engine import Row

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import mapping as m
from meshcore.adapters.sql import statements as q
from meshcore.adapters.sql.tables import (
    agents,
    memory_items,
    networks,
    steps,
    subtasks,
    task_events,
    tasks,
    webhook_deliveries,
)
from meshcore.domain.errors import NotFound, TaskEnded
from meshcore.domain.memory import MemoryItem, MemoryQuery
from meshcore.domain.network import Agent, AgentType, Network
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
from meshcore.domain.usage import Usage
from meshcore.domain.webhooks import Delivery, DeliveryStatus
from meshcore.ports import Page


class _Repository:
    def __init__(self, connection: sa.Connection, tenant_id: str, sealer: Sealer) -> None:
        self._db, self._tenant_id, self._sealer = connection, tenant_id, sealer

    def _insert_absent(self, table: sa.Table, rows: Sequence[dict[str, object]]) -> list[Row]:
        """Insert rows whose primary key is not taken yet; answers the rows that went in.

        Rows go as parameters, which SQLAlchemy batches into one INSERT; RETURNING tells what
        went in (psycopg reports no rowcount for this statement).
        """
        statement = q.insert_absent(self._db.dialect.name, table)
        return self._db.execute(statement, list(rows)).mappings().all()


class SqlNetworkRepository(_Repository):
    def add(self, network: Network) -> None:
        self._db.execute(networks.insert().values(m.network_row(network, self._sealer)))
        if network.agents:
            self._db.execute(
                agents.insert(), [m.agent_row(a, i) for i, a in enumerate(network.agents)]
            )

    def get(self, network_id: UUID, *, with_usage: bool = False) -> Network:
        """The network with its agents; what its tasks spent only when asked (it sums them)."""
        rows = (
            self._db.execute(
                q.NETWORK_WITH_AGENTS, {"p_id": network_id, "p_tenant": self._tenant_id}
            )
            .mappings()
            .all()
        )
        if not rows:
            raise NotFound("network", network_id)
        found = [
            m.agent_from_row({c.name: row[f"agent_{c.name}"] for c in agents.c})
            for row in rows
            if row["agent_id"] is not None
        ]
        network = m.network_from_row(rows[0], found)
        if with_usage:
            network.usage = self._usage([network_id]).get(network_id, Usage())
        return network

    def require(self, network_id: UUID) -> None:
        self._require(sa.select(networks.c.id), network_id)

    def set_webhook_secret(self, network_id: UUID, secret: str) -> None:
        changed = self._db.execute(
            networks.update()
            .where(networks.c.id == network_id, networks.c.tenant_id == self._tenant_id)
            .values(webhook_secret=self._sealer.seal(secret))
        ).rowcount
        if not changed:
            raise NotFound("network", network_id)

    def webhook_secret(self, network_id: UUID) -> str | None:
        sealed = self._db.execute(
            sa.select(networks.c.webhook_secret).where(
                networks.c.id == network_id, networks.c.tenant_id == self._tenant_id
            )
        ).scalar()
        return self._sealer.open(sealed) if sealed is not None else None

    def require_locked(self, network_id: UUID) -> None:
        # FOR NO KEY UPDATE: team changes take turns, yet adding a task or an agent (whose
        # foreign keys take KEY SHARE on this row) does not wait.
        self._require(sa.select(networks.c.id).with_for_update(key_share=True), network_id)

    def _require(self, statement: sa.Select, network_id: UUID) -> None:
        found = self._db.execute(
            statement.where(networks.c.id == network_id, networks.c.tenant_id == self._tenant_id)
        ).first()
        if found is None:
            raise NotFound("network", network_id)

    def list(self, page: Page) -> tuple[list[Network], int]:
        mine = networks.c.tenant_id == self._tenant_id
        total = self._db.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
        rows = (
            self._db.execute(
                networks.select()
                .where(mine)
                .order_by(networks.c.created_at.desc(), networks.c.id)
                .offset(page.offset)
                .limit(page.limit)
            )
            .mappings()
            .all()
        )
        ids = [r["id"] for r in rows]
        by_network: dict[UUID, list[Agent]] = {i: [] for i in ids}
        if ids:
            for row in self._db.execute(
                agents.select()
                .where(agents.c.network_id.in_(ids))
                .order_by(agents.c.position, agents.c.id)
            ).mappings():
                by_network[row["network_id"]].append(m.agent_from_row(row))
        usage = self._usage(ids)
        found = [m.network_from_row(r, by_network[r["id"]]) for r in rows]
        for network in found:
            network.usage = usage.get(network.id, Usage())
        return found, total

    def _usage(self, ids: list[UUID]) -> dict[UUID, Usage]:
        """What the networks' tasks have spent, summed in one query."""
        if not ids:
            return {}
        rows = self._db.execute(
            sa.select(
                tasks.c.network_id,
                sa.func.sum(tasks.c.input_tokens),
                sa.func.sum(tasks.c.output_tokens),
                sa.func.sum(tasks.c.cost_usd),
            )
            .where(tasks.c.tenant_id == self._tenant_id, tasks.c.network_id.in_(ids))
            .group_by(tasks.c.network_id)
        )
        return {nid: Usage(int(i or 0), int(o or 0), float(c or 0)) for nid, i, o, c in rows}

    def delete(self, network_id: UUID) -> None:
        # Children go by ON DELETE CASCADE, in the same transaction.
        deleted = self._db.execute(
            networks.delete().where(
                networks.c.id == network_id, networks.c.tenant_id == self._tenant_id
            )
        ).rowcount
        if not deleted:
            raise NotFound("network", network_id)


class SqlAgentRepository(_Repository):
    def _mine(self, network_id: UUID) -> sa.ColumnElement[bool]:
        return sa.and_(agents.c.tenant_id == self._tenant_id, agents.c.network_id == network_id)

    def add(self, agent: Agent) -> None:
        # Agents read back in the order they were added: `agent_of` takes the first of a type.
        last = self._db.execute(
            sa.select(sa.func.max(agents.c.position)).where(self._mine(agent.network_id))
        ).scalar()
        self._db.execute(agents.insert().values(m.agent_row(agent, (last or 0) + 1)))

    def get(self, network_id: UUID, agent_id: UUID) -> Agent:
        row = (
            self._db.execute(agents.select().where(self._mine(network_id), agents.c.id == agent_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("agent", agent_id)
        return m.agent_from_row(row)

    def list(self, network_id: UUID) -> list[Agent]:
        rows = self._db.execute(
            agents.select().where(self._mine(network_id)).order_by(agents.c.position, agents.c.id)
        ).mappings()
        return [m.agent_from_row(r) for r in rows]

    def delete(self, network_id: UUID, agent_id: UUID) -> None:
        deleted = self._db.execute(
            agents.delete().where(self._mine(network_id), agents.c.id == agent_id)
        ).rowcount
        if not deleted:
            raise NotFound("agent", agent_id)

    def record_call(
        self,
        network_id: UUID,
        agent_type: AgentType,
        *,
        latency_ms: float,
        usage: Usage,
        is_failure: bool,
    ) -> None:
        self._db.execute(
            q.RECORD_CALL,
            {
                "p_tenant": self._tenant_id,
                "p_network": network_id,
                "p_type": agent_type.value,
                "p_failures": int(is_failure),
                "p_latency_ms": latency_ms,
                "p_input_tokens": usage.input_tokens,
                "p_output_tokens": usage.output_tokens,
                "p_cost_usd": usage.cost_usd,
            },
        )


class SqlTaskRepository(_Repository):
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
        self._db.execute(tasks.insert().values(m.task_row(task, self._sealer)))
        self._append_new_history(task, task.network_id, 0)

    def get(self, task_id: UUID) -> Task:
        return self._one(q.TASK, task_id)

    def get_locked(self, task_id: UUID) -> Task:
        return self._one(q.TASK_LOCKED, task_id)

    def in_network(self, task_id: UUID, *, network_id: UUID) -> Task:
        return self._one(q.TASK_IN_NETWORK, task_id, p_network=network_id)

    def locked_in_network(self, task_id: UUID, *, network_id: UUID) -> Task:
        return self._one(q.TASK_IN_NETWORK_LOCKED, task_id, p_network=network_id)

    def _one(self, statement: sa.Select, task_id: UUID, **params: object) -> Task:
        params.update(p_id=task_id, p_tenant=self._tenant_id)
        row = self._db.execute(statement, params).mappings().first()
        if row is None:
            raise NotFound("task", task_id)
        return m.task_from_row(row, self._sealer)

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
        return [m.task_from_row(r, self._sealer) for r in rows], total.scalar_one()

    def save(self, task: Task) -> None:
        params = {"p_id": task.id, "p_tenant": self._tenant_id, **m.task_state(task, self._sealer)}
        if not task.new_history:
            self._db.execute(q.UPDATE_TASK, params)
            return
        row = self._db.execute(q.BUMP_TASK, {**params, "p_n": len(task.new_history)}).first()
        if row is None:
            raise NotFound("task", task.id)
        task.revision = row.revision
        self._append_new_history(task, row.network_id, row.revision - len(task.new_history))

    def add_step(self, step: StepRecord, *, now: datetime) -> None:
        # Without loading or locking the task first: its steps record concurrently, and the
        # sums are increments in SQL, so none is lost.
        row = self._db.execute(
            q.ADD_USAGE,
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
        self._append_bumped(task_id, self._db.execute(q.BUMP_TASK, params).first(), entry)

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
        row = self._db.execute(q.BUMP_TASK, params).first()
        if row is None:
            raise NotFound("task", task_id)
        status = TaskStatus(row.status)
        entries = [replace(entry, status=status)]
        self._append(task_id, row.network_id, status, entries, row.revision - 1)

    def touch(self, task_id: UUID, now: datetime) -> None:
        """Set the heartbeat without locking or loading the task (see the port)."""
        self._db.execute(
            q.UPDATE_TASK, {"p_id": task_id, "p_tenant": self._tenant_id, "heartbeat_at": now}
        )

    def history(self, task_id: UUID) -> list[HistoryEntry]:
        rows = self._db.execute(q.HISTORY, {"p_task": task_id, "p_tenant": self._tenant_id})
        return [m.event_from_row(r, self._sealer) for r in rows.mappings()]

    def events(self, task_id: UUID, *, after: int, limit: int) -> list[HistoryEntry]:
        params = {"p_task": task_id, "p_tenant": self._tenant_id, "p_after": after}
        rows = self._db.execute(q.EVENTS, {**params, "p_limit": limit})
        return [m.event_from_row(r, self._sealer) for r in rows.mappings()]

    def revision(self, task_id: UUID, *, network_id: UUID) -> Revision:
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "p_network": network_id}
        row = self._db.execute(q.REVISION, params).first()
        if row is None:
            raise NotFound("task", task_id)
        return Revision(row.revision, TaskStatus(row.status))

    def summary(self, task_id: UUID, *, network_id: UUID) -> TaskSummary:
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "p_network": network_id}
        row = self._db.execute(q.SUMMARY, params).mappings().first()
        if row is None:
            raise NotFound("task", task_id)
        result = self._sealer.open_json(row["result"]) or {}
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

    def add_plan(self, task_id: UUID, iteration: int, plan: Plan, *, now: datetime) -> None:
        rows = [
            {
                "task_id": task_id,
                "iteration": iteration,
                "key": s.key,
                "tenant_id": self._tenant_id,
                "position": position,
                "wave": plan.wave_of(s.key),
                "depends_on": list(s.depends_on),
                "agent_type": s.agent_type.value,
                "description": self._sealer.seal(s.description),
            }
            for position, s in enumerate(plan.subtasks)
        ]
        if not self._insert_absent(subtasks, rows):
            return  # another delivery stored this plan, and noted it
        planned = [(s, plan.wave_of(s.key)) for s in plan.subtasks]
        entry = plan_entry(planned, iteration=iteration, status=TaskStatus.QUEUED, now=now)
        params = {"p_id": task_id, "p_tenant": self._tenant_id, "p_n": 1}
        self._append_bumped(task_id, self._db.execute(q.BUMP_TASK, params).first(), entry)

    def subtasks(self, task_id: UUID, iteration: int) -> list[Subtask]:
        return self._subtasks(q.SUBTASKS, task_id, p_iteration=iteration)

    def subtask(self, task_id: UUID, iteration: int, key: str) -> Subtask | None:
        found = self._subtasks(q.SUBTASK, task_id, p_iteration=iteration, p_key=key)
        return found[0] if found else None

    def every_subtask(self, task_id: UUID) -> list[Subtask]:
        return self._subtasks(q.EVERY_SUBTASK, task_id)

    def _subtasks(self, statement: sa.Select, task_id: UUID, **params: object) -> list[Subtask]:
        """The subtasks `statement` selects, each with its step if one is recorded."""
        params.update(p_task=task_id, p_tenant=self._tenant_id)
        result = []
        for row in self._db.execute(statement, params).mappings():
            step = None
            if row["step_status"] is not None:
                step = m.step_from_row(
                    {c.name: row[f"step_{c.name}"] for c in steps.c}, self._sealer
                )
            planned = m.planned_from_row(row, self._sealer)
            result.append(Subtask(task_id, row["iteration"], row["wave"], planned, step))
        return result

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
        rows = [
            {
                "id": uuid4(),
                "tenant_id": self._tenant_id,
                "task_id": task_id,
                "network_id": network_id,
                "event_seq": e.seq,
                "event_type": e.type,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": e.at,
                "created_at": e.at,
            }
            for e in entries
        ]
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
        rows = [m.event_row(self._tenant_id, task_id, e, self._sealer) for e in numbered]
        self._db.execute(task_events.insert(), rows)
        revision = last_seq + len(entries)
        self._changes[task_id] = TaskChange(self._tenant_id, network_id, task_id, revision, status)
        return numbered


class SqlWebhookRepository(_Repository):
    """Webhook deliveries: leased for an attempt, then recorded."""

    def lease(self, delivery_id: UUID, *, now: datetime, until: datetime) -> Delivery | None:
        """The pending delivery, leased until `until`; None if it is not due, or is leased,
        delivered or given up on."""
        d = webhook_deliveries.c
        row = (
            self._db.execute(
                webhook_deliveries.update()
                .where(
                    d.id == delivery_id,
                    d.tenant_id == self._tenant_id,
                    d.status == DeliveryStatus.PENDING.value,
                    d.next_attempt_at <= now,
                    sa.or_(d.leased_until.is_(None), d.leased_until < now),
                )
                .values(leased_until=until)
                .returning(*webhook_deliveries.c)
            )
            .mappings()
            .first()
        )
        return _delivery(row) if row is not None else None

    def record(
        self,
        delivery_id: UUID,
        *,
        attempts: int,
        status: DeliveryStatus,
        next_attempt_at: datetime,
    ) -> None:
        d = webhook_deliveries.c
        self._db.execute(
            webhook_deliveries.update()
            .where(d.id == delivery_id, d.tenant_id == self._tenant_id)
            .values(
                attempts=attempts,
                status=status.value,
                next_attempt_at=next_attempt_at,
                leased_until=None,
            )
        )

    def for_task(self, task_id: UUID) -> list[Delivery]:
        d = webhook_deliveries.c
        rows = self._db.execute(
            webhook_deliveries.select()
            .where(d.task_id == task_id, d.tenant_id == self._tenant_id)
            .order_by(d.event_seq)
        ).mappings()
        return [_delivery(r) for r in rows]


def _delivery(row: Row | dict) -> Delivery:
    return Delivery(
        id=row["id"],
        tenant_id=row["tenant_id"],
        task_id=row["task_id"],
        network_id=row["network_id"],
        event_seq=row["event_seq"],
        event_type=row["event_type"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=m.aware(row["next_attempt_at"]),
    )


class SqlStepRepository(_Repository):
    def begin_attempt(
        self, task_id: UUID, iteration: int, key: str, *, now: datetime, lease_seconds: float
    ) -> int | None:
        """Count an attempt at a step and lease it, or None while another attempt holds it."""
        row = {"task_id": task_id, "iteration": iteration, "key": key, "tenant_id": self._tenant_id}
        return self._db.execute(
            q.begin_attempt(self._db.dialect.name),
            {
                **row,
                "attempts": 1,
                "started_at": now,
                "p_stale": now - timedelta(seconds=lease_seconds),
            },
        ).scalar()

    def record(self, step: StepRecord) -> tuple[StepRecord, bool]:
        inserted = self._insert_absent(steps, [m.step_row(self._tenant_id, step, self._sealer)])
        if inserted:
            return m.step_from_row(inserted[0], self._sealer), True
        stored = self.get(step.task_id, step.iteration, step.key)
        assert stored is not None  # a conflict: it was already there
        return stored, False

    def get(self, task_id: UUID, iteration: int, key: str) -> StepRecord | None:
        params = {"p_task": task_id, "p_iteration": iteration, "p_key": key}
        row = self._db.execute(q.STEP, {**params, "p_tenant": self._tenant_id}).mappings().first()
        return m.step_from_row(row, self._sealer) if row else None

    def for_iteration(self, task_id: UUID, iteration: int) -> list[StepRecord]:
        rows = self._db.execute(
            steps.select()
            .where(
                steps.c.task_id == task_id,
                steps.c.iteration == iteration,
                steps.c.tenant_id == self._tenant_id,
            )
            .order_by(steps.c.recorded_at, steps.c.key)
        ).mappings()
        return [m.step_from_row(r, self._sealer) for r in rows]


class SqlMemoryRepository(_Repository):
    def add(self, item: MemoryItem) -> None:
        self._db.execute(memory_items.insert(), m.memory_row(item, self._sealer))

    def get(self, network_id: UUID, item_id: UUID) -> MemoryItem:
        row = (
            self._db.execute(
                memory_items.select().where(
                    memory_items.c.tenant_id == self._tenant_id,
                    memory_items.c.network_id == network_id,
                    memory_items.c.id == item_id,
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("memory item", item_id)
        return m.memory_from_row(row, self._sealer)

    def list(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        rows = self._db.execute(
            memory_items.select()
            .where(*self._matching(network_id, query))
            .order_by(memory_items.c.created_at.desc(), memory_items.c.id)
            .offset(query.offset)
            .limit(query.limit)
        ).mappings()
        return [m.memory_from_row(r, self._sealer) for r in rows]

    def count(self, network_id: UUID, query: MemoryQuery) -> int:
        return self._db.execute(
            sa.select(sa.func.count())
            .select_from(memory_items)
            .where(*self._matching(network_id, query))
        ).scalar_one()

    def _matching(self, network_id: UUID, query: MemoryQuery) -> list[sa.ColumnElement[bool]]:
        where = [
            memory_items.c.tenant_id == self._tenant_id,
            memory_items.c.network_id == network_id,
            memory_items.c.type.in_([t.value for t in query.types]),
            memory_items.c.confidence >= query.min_confidence,
        ]
        if query.task_id is not None:
            where.append(memory_items.c.task_id == query.task_id)
        return where
