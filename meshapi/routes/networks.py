"""/api/mesh/networks"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from meshapi.blueprint import Blueprint
from meshapi.context import mesh, services
from meshapi.idempotency import IdempotencyHeaderSchema, idempotency_of
from meshapi.schemas.errors import ErrorSchema
from meshapi.schemas.networks import (
    NETWORK_EXAMPLE,
    NetworkCreatedSchema,
    NetworkCreateSchema,
    NetworkSchema,
)
from meshapi.schemas.webhooks import WebhookSecretSchema
from meshcore.domain.network import ModelConfig
from meshcore.domain.usage import Budget
from meshcore.ports import Page
from meshcore.services.networks import AgentSpec

blp = Blueprint(
    "networks",
    __name__,
    url_prefix="/api/mesh/networks",
    description="Networks: a team of agents with one configuration",
)


@blp.route("")
class Networks(MethodView):
    @blp.arguments(NetworkCreateSchema(), example=NETWORK_EXAMPLE)
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.response(201, NetworkCreatedSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict, headers: dict) -> object:
        """Create a network; without `agents` it gets the default team of seven. The answer
        holds its webhook signing secret, once."""
        config = body["config"]
        if config.get("model_chain"):
            config["model_chain"] = tuple(config["model_chain"])
        if "budget" in config:
            config["budget"] = Budget(**config["budget"])
        agents = None
        if "agents" in body:
            agents = [agent_spec(a) for a in body["agents"]]
        return services().networks.create(
            name=body["name"],
            description=body["description"],
            config=replace(mesh().default_network_config(), **config),
            agents=agents,
            idempotency=idempotency_of(headers),
        )

    @blp.response(200, NetworkSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters) -> object:
        """List networks, newest first."""
        networks, total = services().networks.list(page_of(pagination_parameters))
        pagination_parameters.item_count = total
        return networks


@blp.route("/<id(network):network_id>")
class NetworkById(MethodView):
    @blp.response(200, NetworkSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, network_id: UUID) -> object:
        """A network with its agents."""
        return services().networks.get(network_id)

    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema)
    def delete(self, network_id: UUID) -> None:
        """Delete a network with its agents, tasks and memory."""
        services().networks.delete(network_id)


@blp.route("/<id(network):network_id>/webhook-secret")
class NetworkWebhookSecret(MethodView):
    @blp.response(201, WebhookSecretSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def post(self, network_id: UUID) -> object:
        """Rotate the network's webhook signing secret: the answer holds the new one, once;
        deliveries are signed under it from now on."""
        return {"webhook_secret": services().networks.rotate_webhook_secret(network_id)}


def agent_spec(body: dict) -> AgentSpec:
    model = body.get("model")
    return AgentSpec(
        type=body["type"],
        name=body.get("name"),
        model=ModelConfig(
            chain=tuple(model["chain"]) if model.get("chain") else None,
            temperature=model["temperature"],
            max_tokens=model["max_tokens"],
        )
        if model
        else None,
        capabilities=tuple(body["capabilities"]) if "capabilities" in body else None,
    )


def page_of(parameters: PaginationParameters) -> Page:
    return Page(offset=parameters.first_item, limit=parameters.page_size)
