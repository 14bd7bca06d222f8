"""Repositories over SQLAlchemy Core: networks, agents, steps and memory (tasks are in
tasks.py, webhook deliveries in webhooks.py). Every query is filtered by the tenant; none
commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

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
    tasks,
)
from meshcore.domain.errors import NotFound
from meshcore.domain.memory import MemoryItem, MemoryQuery
from meshcore.domain.network import Agent, Network
from meshcore.domain.task import (
    StepRecord,
)
from meshcore.domain.usage import Usage
from meshcore.ports import Page


class Repository:
    """What every repository of a unit of work holds: its connection, tenant and sealer."""

    def __init__(self, connection: sa.Connection, tenant_id: str, sealer: Sealer) -> None:
        self._db, self._tenant_id, self._sealer = connection, tenant_id, sealer

    def _insert_absent(self, table: sa.Table, rows: Sequence[dict[str, object]]) -> list[Row]:
        """Insert rows whose primary key is not taken yet; answers the rows that went in.

        Rows go as parameters, which SQLAlchemy batches into one INSERT; RETURNING tells what
        went in (psycopg reports no rowcount for this statement).
        """
        statement = q.insert_absent(self._db.dialect.name, table)
        return self._db.execute(statement, list(rows)).mappings().all()


class SqlNetworkRepository(Repository):
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


class SqlAgentRepository(Repository):
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
        agent_type: str,
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
                "p_type": str(agent_type),
                "p_failures": int(is_failure),
                "p_latency_ms": latency_ms,
                "p_input_tokens": usage.input_tokens,
                "p_output_tokens": usage.output_tokens,
                "p_cost_usd": usage.cost_usd,
            },
        )


class SqlStepRepository(Repository):
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


class SqlMemoryRepository(Repository):
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
