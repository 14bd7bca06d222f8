"""A network and its agents as rows: the columns selected, rows to objects and back.

A network's config is a JSON column, kept clear; its webhook secret is sealed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.lifetimes_json import policy_from_json, policy_to_json
from meshcore.adapters.sql.rows import Row, aware, labelled, unlabelled
from meshcore.adapters.sql.tables import agents, networks
from meshcore.domain.network import (
    Agent,
    AgentMetrics,
    Approval,
    ModelConfig,
    Network,
    NetworkConfig,
)
from meshcore.domain.usage import Budget
from meshcore.domain.webhooks import Webhook

p = sa.bindparam

_AGENT = "agent_"
AGENT_COLUMNS = labelled(agents, _AGENT)
# One statement: every step reads its network, and a second round trip for the agents would
# be paid on every step.
NETWORK_WITH_AGENTS = (
    sa.select(networks, *AGENT_COLUMNS)
    .select_from(networks.outerjoin(agents, agents.c.network_id == networks.c.id))
    .where(networks.c.id == p("p_id"), networks.c.tenant_id == p("p_tenant"))
    .order_by(agents.c.position, agents.c.id)
)

# The agent Network.agent_of picks (the first enabled of its type) counts a call; increments
# in SQL, so concurrent steps of one agent never lose a count.
_TAKES_THE_STEPS = (
    sa.select(agents.c.id)
    .where(
        agents.c.tenant_id == p("p_tenant"),
        agents.c.network_id == p("p_network"),
        agents.c.type == p("p_type"),
        sa.not_(agents.c.is_disabled),
    )
    .order_by(agents.c.position, agents.c.id)
    .limit(1)
    .scalar_subquery()
)
RECORD_CALL = (
    agents.update()
    .where(agents.c.id == _TAKES_THE_STEPS)
    .values(
        calls=agents.c.calls + 1,
        failures=agents.c.failures + p("p_failures", type_=sa.Integer),
        latency_ms_total=agents.c.latency_ms_total + p("p_latency_ms", type_=sa.Float),
        input_tokens=agents.c.input_tokens + p("p_input_tokens", type_=sa.BigInteger),
        output_tokens=agents.c.output_tokens + p("p_output_tokens", type_=sa.BigInteger),
        cost_usd=agents.c.cost_usd + p("p_cost_usd", type_=sa.Float),
    )
)


def network_with_agents(rows: Sequence[Row]) -> Network:
    """The network that the rows of NETWORK_WITH_AGENTS hold: a row per agent, or one row
    without an agent for a network that has none."""
    found = [
        agent_from_row(unlabelled(row, agents, _AGENT))
        for row in rows
        if row[f"{_AGENT}id"] is not None
    ]
    return network_from_row(rows[0], found)


def config_to_json(config: NetworkConfig) -> dict[str, object]:
    return {
        "max_iterations": config.max_iterations,
        "timeout_seconds": config.timeout_seconds,
        "quality_threshold": config.quality_threshold,
        "model_chain": list(config.model_chain) if config.model_chain else None,
        "budget": {"tokens": config.budget.tokens, "cost_usd": config.budget.cost_usd},
        "webhook": config.webhook.to_json() if config.webhook is not None else None,
        "approval": {
            "plan": config.approval.plan,
            "timeout_seconds": config.approval.timeout_seconds,
        },
        "memory": policy_to_json(config.memory),
    }


def config_from_json(data: Mapping[str, Any]) -> NetworkConfig:
    chain = data.get("model_chain")
    budget = data.get("budget") or {}
    return NetworkConfig(
        budget=Budget(tokens=budget.get("tokens"), cost_usd=budget.get("cost_usd")),
        max_iterations=data["max_iterations"],
        timeout_seconds=data["timeout_seconds"],
        quality_threshold=data["quality_threshold"],
        model_chain=tuple(chain) if chain else None,
        webhook=Webhook.from_json(data.get("webhook")),
        approval=_approval_from_json(data.get("approval")),
        memory=policy_from_json(data.get("memory")),
    )


def _approval_from_json(data: object) -> Approval:
    """A row written before approvals existed has none: its plans need no approval."""
    if not isinstance(data, Mapping):
        return Approval()
    default = Approval()
    return Approval(
        plan=bool(data.get("plan", default.plan)),
        timeout_seconds=int(data.get("timeout_seconds", default.timeout_seconds)),
    )


def network_row(network: Network, sealer: Sealer) -> dict[str, object]:
    return {
        "id": network.id,
        "tenant_id": network.tenant_id,
        "name": network.name,
        "description": network.description,
        "config": config_to_json(network.config),
        "created_at": network.created_at,
        "updated_at": network.updated_at,
        "webhook_secret": (
            sealer.seal(network.webhook_secret) if network.webhook_secret is not None else None
        ),
    }


def network_from_row(row: Row, members: list[Agent]) -> Network:
    return Network(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        description=row["description"],
        config=config_from_json(row["config"]),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        agents=members,
    )


def agent_row(agent: Agent, position: int) -> dict[str, object]:
    m = agent.metrics
    return {
        "position": position,
        "id": agent.id,
        "tenant_id": agent.tenant_id,
        "network_id": agent.network_id,
        "name": agent.name,
        "type": str(agent.type),
        "model": {
            "chain": list(agent.model.chain) if agent.model.chain else None,
            "temperature": agent.model.temperature,
            "max_tokens": agent.model.max_tokens,
        },
        "capabilities": list(agent.capabilities),
        "is_disabled": agent.is_disabled,
        "calls": m.calls,
        "failures": m.failures,
        "latency_ms_total": m.latency_ms_total,
        "input_tokens": m.input_tokens,
        "output_tokens": m.output_tokens,
        "cost_usd": m.cost_usd,
        "created_at": agent.created_at,
    }


def agent_from_row(row: Row) -> Agent:
    model = row["model"]
    return Agent(
        id=row["id"],
        tenant_id=row["tenant_id"],
        network_id=row["network_id"],
        name=row["name"],
        type=row["type"],
        created_at=aware(row["created_at"]),
        model=ModelConfig(
            chain=tuple(model["chain"]) if model.get("chain") else None,
            temperature=model["temperature"],
            max_tokens=model["max_tokens"],
        ),
        capabilities=tuple(row["capabilities"]),
        is_disabled=row["is_disabled"],
        metrics=AgentMetrics(
            calls=row["calls"],
            failures=row["failures"],
            latency_ms_total=row["latency_ms_total"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cost_usd=row["cost_usd"],
        ),
    )
