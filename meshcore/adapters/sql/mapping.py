"""Rows to domain objects and back; the repositories share these.

Content (a task's words, context, plan, result and error; a step's output and error; a
subtask's description; a history line's detail; a memory item's content and metadata) is
sealed on the way in and opened on the way out; ids, statuses, times and counters stay clear
for queries and indexes. A JSON column holds its sealed value as a JSON string (the token):
the columns keep their types, so no migration is needed, and rows written before sealing
(JSON objects) still read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from meshcore.adapters.sealing import Sealer
from meshcore.domain.keys import ApiKey, parse_scopes
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.network import (
    Agent,
    AgentMetrics,
    Approval,
    ModelConfig,
    Network,
    NetworkConfig,
)
from meshcore.domain.plan import PlannedSubtask, parse_plan, plan_to_json
from meshcore.domain.task import (
    HistoryEntry,
    Priority,
    StepRecord,
    StepStatus,
    Task,
    TaskStatus,
    Usage,
)
from meshcore.domain.usage import Budget
from meshcore.domain.webhooks import Webhook

Row = Mapping[str, Any]


def aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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


def network_from_row(row: Row, agents: list[Agent]) -> Network:
    return Network(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        description=row["description"],
        config=config_from_json(row["config"]),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        agents=agents,
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
        "result": sealer.seal_json(task.result) if task.result is not None else None,
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
    result = sealer.open_json(row["result"])
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
        heartbeat_at=aware(row["heartbeat_at"]) if row["heartbeat_at"] else None,
        is_held=row["held"],
        revision=row["revision"],
        result=result,
        error=sealer.open(row["error"]) if row["error"] is not None else None,
        usage=Usage(row["input_tokens"], row["output_tokens"], row["cost_usd"]),
        webhook=Webhook.from_json(row["webhook"]),
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


def step_row(tenant_id: str, step: StepRecord, sealer: Sealer) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "task_id": step.task_id,
        "iteration": step.iteration,
        "key": step.key,
        "agent_type": str(step.agent_type),
        "agent_version": step.agent_version,
        "queue": step.queue,
        "status": step.status.value,
        "output": sealer.seal(step.output),
        "model": step.model,
        "input_tokens": step.usage.input_tokens,
        "output_tokens": step.usage.output_tokens,
        "cost_usd": step.usage.cost_usd,
        "latency_ms": step.latency_ms,
        "memory_read": list(step.memory_read),
        "error": sealer.seal(step.error) if step.error is not None else None,
        "worker": step.worker,
        "recorded_at": step.recorded_at,
        "traceparent": step.traceparent,
    }


def step_from_row(row: Row, sealer: Sealer) -> StepRecord:
    return StepRecord(
        task_id=row["task_id"],
        iteration=row["iteration"],
        key=row["key"],
        agent_type=row["agent_type"],
        agent_version=row["agent_version"],
        queue=row["queue"],
        status=StepStatus(row["status"]),
        output=sealer.open(row["output"]),
        recorded_at=aware(row["recorded_at"]),
        model=row["model"],
        usage=Usage(row["input_tokens"], row["output_tokens"], row["cost_usd"]),
        latency_ms=row["latency_ms"],
        memory_read=tuple(row["memory_read"]),
        error=sealer.open(row["error"]) if row["error"] is not None else None,
        worker=row["worker"],
        traceparent=row["traceparent"],
    )


def planned_from_row(row: Row, sealer: Sealer) -> PlannedSubtask:
    return PlannedSubtask(
        key=row["key"],
        agent_type=row["agent_type"],
        description=sealer.open(row["description"]),
        depends_on=tuple(row["depends_on"]),
        agent_version=row["agent_version"],
        queue=row["queue"] or "",
    )


def memory_row(item: MemoryItem, sealer: Sealer) -> dict[str, object]:
    return {
        "id": item.id,
        "tenant_id": item.tenant_id,
        "network_id": item.network_id,
        "task_id": UUID(item.task_id) if item.task_id else None,
        "type": item.type.value,
        "content": sealer.seal(item.content),
        "confidence": item.confidence,
        "metadata": sealer.seal_json(item.metadata),
        "created_at": item.created_at,
    }


def memory_from_row(row: Row, sealer: Sealer) -> MemoryItem:
    return MemoryItem(
        id=row["id"],
        tenant_id=row["tenant_id"],
        network_id=row["network_id"],
        type=MemoryType(row["type"]),
        content=sealer.open(row["content"]),
        confidence=row["confidence"],
        created_at=aware(row["created_at"]),
        metadata=sealer.open_json(row["metadata"]),
    )


def key_row(key: ApiKey, digest: str) -> dict[str, object]:
    return {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "scopes": ",".join(sorted(key.scopes)),
        "digest": digest,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def key_from_row(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        scopes=parse_scopes(row["scopes"]),
        created_at=aware(row["created_at"]),
        revoked_at=aware(row["revoked_at"]) if row["revoked_at"] is not None else None,
    )
