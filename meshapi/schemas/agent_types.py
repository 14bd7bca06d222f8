"""Agent types of the catalog, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import no_nul, text
from meshapi.schemas.networks import ModelConfigSchema
from meshcore.domain.agent_types import (
    GENERAL_QUEUE,
    MAX_CAPABILITIES,
    MAX_COMMAND_PART,
    MAX_COMMAND_PARTS,
    MAX_DESCRIPTION,
    MAX_MEMORY_TOKENS,
    MAX_ROLE,
    NAME_PATTERN,
    AgentTypeDef,
    ModelDefaults,
    ToolServer,
)
from meshcore.domain.errors import InvalidInput
from meshcore.domain.memory import MemoryType

NAME = validate.Regexp(NAME_PATTERN, error="must be 2-32 characters: a-z, 0-9 and -")


class ToolServerSchema(ma.Schema):
    """A server is a `url` or a `command`, never both."""

    name = ma.fields.String(required=True, validate=NAME)
    url = ma.fields.Url(
        schemes={"http", "https"},
        require_tld=False,
        metadata={"description": "The MCP server's streamable HTTP endpoint"},
    )
    command = ma.fields.List(
        ma.fields.String(validate=[validate.Length(max=MAX_COMMAND_PART), no_nul]),
        validate=validate.Length(1, MAX_COMMAND_PARTS),
        metadata={"description": "Or a program (an absolute path) and its arguments, run on "
                  "the worker and spoken to over stdio: only a program the operator allows "
                  "(MESH_MCP_STDIO_COMMANDS)"},
    )  # fmt: skip
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
    headers = ma.fields.Dict(
        keys=ma.fields.String(validate=validate.Length(1, 64)),
        values=ma.fields.String(validate=validate.Length(0, 4096)),
        load_only=True,
        load_default=dict,
        validate=validate.Length(max=8),
        metadata={"description": "Sent with every request to the server, e.g. "
                  "Authorization: stored sealed, never shown back (header_names shows which); "
                  "a PUT that leaves them out drops them"},
    )  # fmt: skip
    header_names = ma.fields.Function(
        lambda server: [name for name, _ in server.headers], dump_only=True
    )

    @ma.validates_schema
    def _url_or_command(self, data: dict, **kwargs: object) -> None:
        if ("url" in data) == ("command" in data):
            raise ma.ValidationError(
                "give either a url (streamable HTTP) or a command (stdio)", "url"
            )

    @ma.post_dump
    def _only_its_kind(self, data: dict, **kwargs: object) -> dict:
        # A server shows the one it has: an empty url or command says nothing.
        return {k: v for k, v in data.items() if k not in ("url", "command") or v}


class AgentTypeBodySchema(ma.Schema):
    """What a client sends to change a type (the name is the path's). What it leaves out
    takes the default shown; `description` and `role` are required."""

    description = text(MAX_DESCRIPTION, metadata={
        "description": "What the coordinator reads when it plans: what this agent does"
    })  # fmt: skip
    role = text(MAX_ROLE, metadata={"description": "The system prompt"})
    capabilities = ma.fields.List(
        text(64), validate=validate.Length(max=MAX_CAPABILITIES), metadata={"default": []}
    )
    reads = ma.fields.List(
        ma.fields.Enum(MemoryType, by_value=True),
        metadata={"description": "The memory types its steps are shown",
                  "default": ["fact", "context"]},
    )  # fmt: skip
    writes = ma.fields.Enum(
        MemoryType,
        by_value=True,
        metadata={"description": "The memory type its answers are stored as", "default": "fact"},
    )
    answer = ma.fields.Dict(
        allow_none=True,
        metadata={"description": "A JSON Schema (an object schema) the answer must satisfy; "
                  "null (the default): free text"},
    )  # fmt: skip
    model = ma.fields.Nested(ModelConfigSchema, allow_none=True)
    tools = ma.fields.List(
        ma.fields.Nested(ToolServerSchema), validate=validate.Length(max=8),
        metadata={"default": []},
    )  # fmt: skip
    max_tool_calls = ma.fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(1, 32),
        metadata={"description": "null (the default): MESH_MAX_TOOL_CALLS"},
    )  # fmt: skip
    memory_tokens = ma.fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(0, MAX_MEMORY_TOKENS),
        metadata={"description": "The shared memory a step's prompt may hold, in estimated "
                  "tokens (4 characters each), best-ranked items first; 0: none; null (the "
                  "default): MESH_MEMORY_TOKEN_BUDGET"},
    )  # fmt: skip
    queue = ma.fields.String(
        metadata={"description": "agent.general (the default), or agent.<name> for a pool of "
                  "its own (see `mesh deploy render`)"},
    )  # fmt: skip


class AgentTypeCreateSchema(AgentTypeBodySchema):
    """A new type; `copy_of` starts it from another type (a built-in one too): what the body
    leaves out is that type's, but the queue, which is agent.general unless given."""

    name = ma.fields.String(required=True, validate=NAME)
    copy_of = ma.fields.String(validate=NAME, load_only=True)


class AgentTypeSchema(AgentTypeBodySchema):
    name = ma.fields.String()
    version = ma.fields.Integer()
    builtin = ma.fields.Boolean(attribute="is_builtin")
    answer_format = ma.fields.String()
    created_at = ma.fields.DateTime(allow_none=True)


def definition_of(body: dict, name: str, base: AgentTypeDef | None = None) -> AgentTypeDef:
    """The definition a request body describes, over `base` (a copied type) or the defaults;
    the domain checks what the schema cannot."""
    for required in ("description", "role"):
        if required not in body and base is None:
            raise InvalidInput(required, "Missing data for required field.")
    start = base or AgentTypeDef(name=name, description="-", role="-")
    model = body.get("model") or {}
    servers = start.tools
    if (tools := body.get("tools")) is not None:
        servers = tuple(
            ToolServer(
                t["name"],
                t.get("url", ""),
                tuple(t["tools"]),
                tuple(t["idempotent"]),
                headers=tuple(t["headers"].items()),
                command=tuple(t.get("command", ())),
            )
            for t in tools
        )
    return AgentTypeDef(
        name=name,
        description=body.get("description", start.description),
        role=body.get("role", start.role),
        capabilities=tuple(body.get("capabilities", start.capabilities)),
        reads=tuple(body.get("reads", start.reads)),
        writes=body.get("writes", start.writes),
        answer=body.get("answer", start.answer),
        model=ModelDefaults(
            chain=tuple(model["chain"]) if model.get("chain") else start.model.chain,
            temperature=model.get("temperature", start.model.temperature),
            max_tokens=model.get("max_tokens", start.model.max_tokens),
        ),
        tools=servers,
        max_tool_calls=body.get("max_tool_calls", start.max_tool_calls),
        memory_tokens=body.get("memory_tokens", start.memory_tokens),
        queue=body.get("queue") or GENERAL_QUEUE,
        confidence=start.confidence,
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
