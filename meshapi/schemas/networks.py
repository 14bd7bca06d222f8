"""Networks and agents, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import Rounded, no_nul, text
from meshapi.schemas.usage import UsageSchema
from meshapi.schemas.webhooks import WebhookSchema
from meshcore.domain.agent_types import NAME_PATTERN
from meshcore.domain.lifetimes import MAX_BOUND, MAX_TTL_SECONDS, MIN_TTL_SECONDS, MemoryPolicy
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import MAX_APPROVAL_SECONDS, Approval

MODEL_NAME = validate.Length(min=1, max=200)


class ModelConfigSchema(ma.Schema):
    chain = ma.fields.List(
        ma.fields.String(validate=MODEL_NAME),
        validate=validate.Length(1, 10),
        allow_none=True,
        metadata={"description": "litellm model names, in order"},
    )
    temperature = ma.fields.Float(validate=validate.Range(0, 2), load_default=0.3)
    max_tokens = ma.fields.Integer(
        strict=True, validate=validate.Range(1, 200_000), load_default=1024
    )


class AgentCreateSchema(ma.Schema):
    type = ma.fields.String(
        required=True,
        validate=validate.Regexp(NAME_PATTERN, error="must be an agent type's name"),
        metadata={"description": "A type in the catalog: GET /api/mesh/agent-types"},
    )
    name = text(200)
    model = ma.fields.Nested(ModelConfigSchema)
    capabilities = ma.fields.List(text(64), validate=validate.Length(max=32))


class AgentMetricsSchema(ma.Schema):
    calls = ma.fields.Integer()
    failures = ma.fields.Integer()
    mean_latency_ms = Rounded(metadata={"description": "Milliseconds, to a tenth"})
    input_tokens = ma.fields.Integer()
    output_tokens = ma.fields.Integer()
    cost_usd = ma.fields.Float()
    in_flight = ma.fields.Integer()


class AgentSchema(ma.Schema):
    id = ma.fields.UUID()
    network_id = ma.fields.UUID()
    name = ma.fields.String()
    type = ma.fields.String(metadata={"description": "Its agent type's name"})
    queue = ma.fields.String(metadata={"description": "The Celery queue of this agent's steps"})
    model = ma.fields.Nested(ModelConfigSchema)
    capabilities = ma.fields.List(ma.fields.String())
    status = ma.fields.String(metadata={"description": "idle, busy or disabled"})
    metrics = ma.fields.Nested(AgentMetricsSchema)
    created_at = ma.fields.DateTime()


class BudgetSchema(ma.Schema):
    tokens = ma.fields.Integer(
        strict=True,
        validate=validate.Range(1, 10**12),
        allow_none=True,
        metadata={"description": "Tokens one task may use"},
    )
    cost_usd = ma.fields.Float(
        validate=validate.Range(0, 10**6, min_inclusive=False),
        allow_none=True,
        metadata={"description": "Dollars one task may spend"},
    )


class ApprovalSchema(ma.Schema):
    plan = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "true: each iteration's plan awaits a person's approval "
            "(POST .../tasks/{task_id}/approve or /reject) before any of it runs"
        },
    )
    timeout_seconds = ma.fields.Integer(
        strict=True,
        validate=validate.Range(1, MAX_APPROVAL_SECONDS),
        load_default=Approval.timeout_seconds,
        metadata={"description": "A plan not approved within this ends its task timed_out"},
    )

    @ma.post_load
    def _to_approval(self, data: dict, **_: object) -> Approval:
        return Approval(plan=data["plan"], timeout_seconds=data["timeout_seconds"])


def _ttl(kind: MemoryType) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=validate.Range(MIN_TTL_SECONDS, MAX_TTL_SECONDS),
        metadata={"description": f"Seconds a {kind.value} item lasts after it is written"},
    )


# One field per memory type, so that an error names the type: config.memory.ttl_seconds.fact
MemoryTtlSchema = ma.Schema.from_dict({t.value: _ttl(t) for t in MemoryType}, name="MemoryTtl")


class MemoryPolicySchema(ma.Schema):
    ttl_seconds = ma.fields.Nested(
        MemoryTtlSchema,
        load_default=dict,
        metadata={
            "description": "A time to live per memory type, 60 s to 365 days; a type not "
            "named lasts (none by default). Context items of a task also end with the task "
            "unless promoted (POST .../memory/{item_id}/promote)"
        },
    )
    max_items = ma.fields.Integer(
        strict=True,
        validate=validate.Range(1, MAX_BOUND),
        allow_none=True,
        load_default=None,
        metadata={
            "description": "The items its memory keeps: past it, the least valuable go "
            "(confidence, use and age); null: the deployment's bound (MESH_MEMORY_BOUND), "
            "which this may lower but not raise"
        },
    )

    @ma.post_load
    def _to_policy(self, data: dict, **_: object) -> MemoryPolicy:
        ttl = {MemoryType(kind): seconds for kind, seconds in data["ttl_seconds"].items()}
        return MemoryPolicy(ttl_seconds=ttl, max_items=data["max_items"])


class NetworkConfigSchema(ma.Schema):
    max_iterations = ma.fields.Integer(strict=True, validate=validate.Range(1, 10))
    timeout_seconds = ma.fields.Integer(strict=True, validate=validate.Range(1, 86_400))
    quality_threshold = ma.fields.Float(validate=validate.Range(0, 1))
    model_chain = ma.fields.List(
        ma.fields.String(validate=MODEL_NAME), validate=validate.Length(1, 10), allow_none=True
    )
    budget = ma.fields.Nested(
        BudgetSchema,
        metadata={"description": "A task that would exceed it stops, failed, keeping its work"},
    )
    webhook = ma.fields.Nested(
        WebhookSchema,
        allow_none=True,
        metadata={"description": "Where its tasks' events are POSTed, signed (see README)"},
    )
    approval = ma.fields.Nested(
        ApprovalSchema,
        metadata={"description": "Whether each plan awaits a person's approval; by default not"},
    )
    memory = ma.fields.Nested(
        MemoryPolicySchema,
        metadata={"description": "How long its memory lasts, and how much it keeps"},
    )


class NetworkCreateSchema(ma.Schema):
    name = text(200, required=True)
    description = ma.fields.String(validate=[validate.Length(max=2000), no_nul], load_default="")
    config = ma.fields.Nested(NetworkConfigSchema, load_default=dict)
    agents = ma.fields.List(
        ma.fields.Nested(AgentCreateSchema),
        validate=validate.Length(1, 32),
        metadata={
            "description": "Omit for the default team of all seven agent types; a team "
            "given here needs a coordinator and a critic"
        },
    )


# What the docs UI fills a request in with: each must succeed as sent (a test posts them).
NETWORK_EXAMPLE = {
    "name": "Launch team",
    "description": "Writes and reviews our product launch emails",
    "config": {
        "max_iterations": 3,
        "quality_threshold": 0.8,
        "timeout_seconds": 600,
        "memory": {"ttl_seconds": {"feedback": 2_592_000}},
    },
    "agents": [
        {"type": "coordinator"},
        {"type": "research", "name": "Market researcher"},
        {"type": "content", "model": {"temperature": 0.7, "max_tokens": 1024}},
        {"type": "critic"},
    ],
}
AGENT_EXAMPLE = {
    "type": "design",
    "name": "Layout designer",
    "capabilities": ["layout", "accessibility"],
    "model": {"temperature": 0.3, "max_tokens": 1024},
}


class NetworkSchema(ma.Schema):
    id = ma.fields.UUID()
    tenant_id = ma.fields.String()
    name = ma.fields.String()
    description = ma.fields.String()
    config = ma.fields.Nested(NetworkConfigSchema)
    agents = ma.fields.List(ma.fields.Nested(AgentSchema))
    usage = ma.fields.Nested(UsageSchema, metadata={"description": "Summed over its tasks"})
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class NetworkCreatedSchema(NetworkSchema):
    webhook_secret = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The secret its webhook deliveries are signed under (`whsec_...`): "
            "shown in this answer only (null when an Idempotency-Key replays the create)"
        },
    )
