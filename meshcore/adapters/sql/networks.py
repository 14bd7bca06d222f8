"""Networks and their agents in the record; their rows are shaped in network_rows.py."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from meshcore.adapters.sql.network_rows import (
    NETWORK_WITH_AGENTS,
    RECORD_CALL,
    agent_from_row,
    agent_row,
    network_from_row,
    network_row,
    network_with_agents,
)
from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.tables import agents, networks, tasks
from meshcore.domain.errors import NotFound
from meshcore.domain.network import Agent, Network
from meshcore.domain.usage import Usage
from meshcore.ports import Page


class SqlNetworkRepository(Repository):
    def add(self, network: Network) -> None:
        self._db.execute(networks.insert().values(network_row(network, self._sealer)))
        if network.agents:
            self._db.execute(
                agents.insert(), [agent_row(a, i) for i, a in enumerate(network.agents)]
            )

    def get(self, network_id: UUID, *, with_usage: bool = False) -> Network:
        """The network with its agents; what its tasks spent only when asked (it sums them)."""
        rows = (
            self._db.execute(NETWORK_WITH_AGENTS, {"p_id": network_id, "p_tenant": self._tenant_id})
            .mappings()
            .all()
        )
        if not rows:
            raise NotFound("network", network_id)
        network = network_with_agents(rows)
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
                by_network[row["network_id"]].append(agent_from_row(row))
        usage = self._usage(ids)
        found = [network_from_row(r, by_network[r["id"]]) for r in rows]
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
        self._db.execute(agents.insert().values(agent_row(agent, (last or 0) + 1)))

    def get(self, network_id: UUID, agent_id: UUID) -> Agent:
        row = (
            self._db.execute(agents.select().where(self._mine(network_id), agents.c.id == agent_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("agent", agent_id)
        return agent_from_row(row)

    def list(self, network_id: UUID) -> list[Agent]:
        rows = self._db.execute(
            agents.select().where(self._mine(network_id)).order_by(agents.c.position, agents.c.id)
        ).mappings()
        return [agent_from_row(r) for r in rows]

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
            RECORD_CALL,
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
