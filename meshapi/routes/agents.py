"""/api/mesh/networks/{id}/agents"""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from meshapi.blueprint import Blueprint
from meshapi.context import services
from meshapi.idempotency import IdempotencyHeaderSchema, idempotency_of
from meshapi.routes.networks import agent_spec
from meshapi.schemas.errors import ErrorSchema
from meshapi.schemas.networks import AGENT_EXAMPLE, AgentCreateSchema, AgentSchema

blp = Blueprint(
    "agents",
    __name__,
    url_prefix="/api/mesh/networks/<id(network):network_id>/agents",
    description="The agents of a network",
)


@blp.route("")
class Agents(MethodView):
    @blp.arguments(AgentCreateSchema(), example=AGENT_EXAMPLE)
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.response(201, AgentSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict, headers: dict, network_id: UUID) -> object:
        """Add an agent to a network."""
        return services().networks.add_agent(
            network_id, agent_spec(body), idempotency=idempotency_of(headers)
        )

    @blp.response(200, AgentSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.paginate()
    def get(self, network_id: UUID, pagination_parameters: PaginationParameters) -> object:
        """The network's agents, in the order they were added, with status and metrics."""
        agents = services().networks.list_agents(network_id)
        pagination_parameters.item_count = len(agents)
        first = pagination_parameters.first_item
        return agents[first : first + pagination_parameters.page_size]


@blp.route("/<id(agent):agent_id>")
class AgentById(MethodView):
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def delete(self, network_id: UUID, agent_id: UUID) -> None:
        """Remove an agent; the last coordinator or critic of a network stays (409)."""
        services().networks.remove_agent(network_id, agent_id)
