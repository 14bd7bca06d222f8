"""/api/mesh/agent-types: the tenant's catalog of agent types."""

from __future__ import annotations

from flask.views import MethodView

from meshapi.blueprint import Blueprint
from meshapi.context import services
from meshapi.schemas.agent_types import (
    AGENT_TYPE_CHANGE_EXAMPLE,
    AGENT_TYPE_EXAMPLE,
    AgentTypeBodySchema,
    AgentTypeCreateSchema,
    AgentTypeSchema,
    definition_of,
)
from meshapi.schemas.errors import ErrorSchema
from meshcore.domain.errors import InvalidInput, NotFound

blp = Blueprint(
    "agent-types",
    __name__,
    url_prefix="/api/mesh/agent-types",
    description="The catalog of agent types a network's agents are made from",
)


@blp.route("")
class AgentTypes(MethodView):
    @blp.response(200, AgentTypeSchema(many=True))
    def get(self) -> object:
        """Every type: the built-in ones and the tenant's own, by name."""
        return services().agent_types.list()

    @blp.arguments(AgentTypeCreateSchema(), example=AGENT_TYPE_EXAMPLE)
    @blp.response(201, AgentTypeSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict) -> object:
        """Add a type (version 1), or a copy of another (`copy_of`) with the body's changes;
        a name in use, built-in or not, is refused (409)."""
        types, base = services().agent_types, None
        if "copy_of" in body:
            try:
                base = types.get(body["copy_of"])
            except NotFound as exc:
                raise InvalidInput("copy_of", f"no agent type {body['copy_of']!r}") from exc
        return types.create(definition_of(body, body["name"], base))


@blp.route("/<string:name>")
class AgentTypeByName(MethodView):
    @blp.response(200, AgentTypeSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, name: str) -> object:
        """A type's current version."""
        return services().agent_types.get(name)

    @blp.arguments(AgentTypeBodySchema(), example=AGENT_TYPE_CHANGE_EXAMPLE)
    @blp.response(200, AgentTypeSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def put(self, body: dict, name: str) -> object:
        """Change a type: a new version, which the steps planned from now on run with."""
        return services().agent_types.change(definition_of(body, name))

    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def delete(self, name: str) -> None:
        """Delete a type no network's agent uses (409 names the networks that do)."""
        services().agent_types.delete(name)


@blp.route("/<string:name>/versions/<int:version>")
class AgentTypeVersion(MethodView):
    @blp.response(200, AgentTypeSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, name: str, version: int) -> object:
        """One version of a type, as the steps that recorded it ran with it."""
        return services().agent_types.get(name, version)
