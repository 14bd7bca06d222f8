"""/api/mesh/networks/{id}/memory"""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from meshapi.blueprint import Blueprint
from meshapi.context import services
from meshapi.idempotency import IdempotencyHeaderSchema, idempotency_of
from meshapi.schemas.errors import ErrorSchema
from meshapi.schemas.memory import (
    MEMORY_EXAMPLE,
    ConfidenceHistorySchema,
    MemoryCreateSchema,
    MemoryItemSchema,
    MemoryQueryArgsSchema,
)
from meshcore.domain.memory import MemoryQuery, MemoryType

blp = Blueprint(
    "memory",
    __name__,
    url_prefix="/api/mesh/networks/<id(network):network_id>/memory",
    description="The network's shared memory",
)


@blp.route("")
class Memory(MethodView):
    @blp.arguments(MemoryCreateSchema(), example=MEMORY_EXAMPLE)
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.response(201, MemoryItemSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict, headers: dict, network_id: UUID) -> object:
        """Add an item to the shared memory. A fact or decision that restates an item of the
        same type (the same text, once case, spacing, punctuation and contractions are set
        aside) adds none: it is merged into that item, whose confidence rises by a verdict as
        strong as the confidence sent (its history says "restated by a client"), and the
        answer, 201 all the same, is that item: its own id, created_at and confidence. A
        retry under the same Idempotency-Key answers it again and merges nothing twice. A
        decision lists in `contradicts` the network's decisions it contradicts."""
        return services().memory.add(network_id, **body, idempotency=idempotency_of(headers))

    @blp.arguments(MemoryQueryArgsSchema(), location="query")
    @blp.response(200, MemoryItemSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.paginate()
    def get(
        self, args: dict, network_id: UUID, pagination_parameters: PaginationParameters
    ) -> object:
        """Items newest first, filtered by type, confidence and task, paginated; with `q` or
        `agent`, ranked best first instead, each with its score and the parts of it."""
        if "limit" in args:
            pagination_parameters.page_size = args["limit"]
        query = MemoryQuery(
            types=tuple(args.get("type") or MemoryType),
            min_confidence=args["min_confidence"],
            limit=pagination_parameters.page_size,
            offset=pagination_parameters.first_item,
            task_id=args.get("task_id") or args.get("task"),
        )
        memory = services().memory
        if "q" in args or "agent" in args:
            page, pagination_parameters.item_count = memory.ranked(
                network_id, query, text=args.get("q"), agent=args.get("agent"),
                types_given="type" in args,
            )  # fmt: skip
            return page
        pagination_parameters.item_count = memory.count(network_id, query)
        return memory.query(network_id, query)


@blp.route("/<id(item):item_id>/history")
class MemoryItemHistory(MethodView):
    @blp.response(200, ConfidenceHistorySchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, network_id: UUID, item_id: UUID) -> object:
        """The item's confidence and every change to it, oldest first, each with its source
        (a critic's verdict, a client's rating, a merge) and reason."""
        return services().learning.history(network_id, item_id)


@blp.route("/<id(item):item_id>/promote")
class MemoryItemPromotion(MethodView):
    @blp.response(200, MemoryItemSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def post(self, network_id: UUID, item_id: UUID) -> object:
        """Promote an item to last: its expiry (its type's time to live) is cleared and, a
        context item, it no longer ends with its task. Answers the item, with `promoted_at`;
        promoting it again changes nothing. Eviction at the network's bound still weighs it
        as any other item."""
        return services().promotion.promote(network_id, item_id)
