"""Agent types of the catalog, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.common import text
from meshapi.schemas.networks import ModelConfigSchema
from meshcore.domain.agent_types import (
    MAX_CAPABILITIES,
    MAX_DESCRIPTION,
    MAX_ROLE,
    NAME_PATTERN,
    AgentTypeDef,
    ModelDefaults,
    ToolServer,
)
from meshcore.domain.memory import MemoryType

NAME = validate.Regexp(NAME_PATTERN, error="must be 2-32 characters: a-z, 0-9 and -")


class ToolServerSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=NAME)
    url = ma.fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        metadata={"description": "The MCP server's streamable HTTP endpoint"},
    )
    tools = ma.fields.List(
        text(128),
        load_default=list,
        validate=validate.Length(max=64),
        metadata={"description": "The tools the type may call; empty: all the server lists"},
    )
    idempotent = ma.fields.List(
        text(128),
        load_default=list,
        metadata={"description": "Tools safe to call again when a call's outcome is unknown"},
    )


class AgentTypeBodySchema(ma.Schema):
    """What a client sends to create or change a type (the name is the path's on a PUT)."""

    description = text(MAX_DESCRIPTION, required=True, metadata={
        "description": "What the coordinator reads when it plans: what this agent does"
    })  # fmt: skip
    role = text(MAX_ROLE, required=True, metadata={"description": "The system prompt"})
    capabilities = ma.fields.List(
        text(64), load_default=list, validate=validate.Length(max=MAX_CAPABILITIES)
    )
    reads = ma.fields.List(
        ma.fields.Enum(MemoryType, by_value=True),
        load_default=lambda: [MemoryType.FACT, MemoryType.CONTEXT],
        metadata={"description": "The memory types its steps are shown"},
    )
    writes = ma.fields.Enum(
        MemoryType,
        by_value=True,
        load_default=MemoryType.FACT,
        metadata={"description": "The memory type its answers are stored as"},
    )
    answer = ma.fields.Dict(
        allow_none=True,
        load_default=None,
        metadata={"description": "A JSON Schema (an object schema) the answer must satisfy; "
                  "null: free text"},
    )  # fmt: skip
    model = ma.fields.Nested(ModelConfigSchema, load_default=None)
    tools = ma.fields.List(
        ma.fields.Nested(ToolServerSchema), load_default=list, validate=validate.Length(max=8)
    )
    max_tool_calls = ma.fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(1, 32)
    )
    queue = ma.fields.String(
        load_default=None,
        metadata={"description": "agent.general (the default), or agent.<name> for a pool of "
                  "its own (see `mesh deploy render`)"},
    )  # fmt: skip


class AgentTypeCreateSchema(AgentTypeBodySchema):
    name = ma.fields.String(required=True, validate=NAME)


class AgentTypeSchema(AgentTypeCreateSchema):
    version = ma.fields.Integer()
    builtin = ma.fields.Boolean(attribute="is_builtin")
    answer_format = ma.fields.String()
    created_at = ma.fields.DateTime(allow_none=True)


def definition_of(body: dict, name: str) -> AgentTypeDef:
    """The definition a request body describes (the domain checks what the schema cannot)."""
    model = body.get("model") or {}
    return AgentTypeDef(
        name=name,
        description=body["description"],
        role=body["role"],
        capabilities=tuple(body["capabilities"]),
        reads=tuple(body["reads"]),
        writes=body["writes"],
        answer=body["answer"],
        model=ModelDefaults(
            chain=tuple(model["chain"]) if model.get("chain") else None,
            temperature=model.get("temperature", 0.3),
            max_tokens=model.get("max_tokens", 1024),
        ),
        tools=tuple(
            ToolServer(t["name"], t["url"], tuple(t["tools"]), tuple(t["idempotent"]))
            for t in body["tools"]
        ),
        max_tool_calls=body["max_tool_calls"],
        queue=body["queue"] or "agent.general",
    )


AGENT_TYPE_EXAMPLE = {
    "name": "legal",
    "description": "Checks claims and wording against advertising law.",
    "role": "You are the legal reviewer of a marketing team. Flag every claim that needs "
    "substantiation and every phrase a regulator could object to.",
    "capabilities": ["compliance", "claims-review"],
    "reads": ["fact", "decision"],
    "writes": "decision",
    "answer": {
        "type": "object",
        "required": ["approved", "issues"],
        "properties": {
            "approved": {"type": "boolean"},
            "issues": {"type": "array", "items": {"type": "string"}},
        },
    },
}
AGENT_TYPE_CHANGE_EXAMPLE = {k: v for k, v in AGENT_TYPE_EXAMPLE.items() if k != "name"}
