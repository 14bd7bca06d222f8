"""/api/mesh/audit: the admin key's tenant's audit trail, newest first."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from meshapi.auth import principal
from meshapi.blueprint import Blueprint
from meshapi.context import mesh
from meshapi.routes.networks import page_of
from meshapi.schemas.audit import AuditEventSchema, AuditQueryArgsSchema

blp = Blueprint(
    "audit",
    __name__,
    url_prefix="/api/mesh/audit",
    description="The audit trail of the calling key's tenant: writes and refusals (admin scope)",
)


@blp.route("")
class Audit(MethodView):
    @blp.arguments(AuditQueryArgsSchema(), location="query")
    @blp.response(200, AuditEventSchema(many=True))
    @blp.paginate()
    def get(self, args: dict, pagination_parameters: PaginationParameters) -> object:
        """Who did what, when, with what outcome: newest first; no content, no secrets."""
        events, total = mesh().audit.list(
            principal().tenant_id, page_of(pagination_parameters), before=args.get("before")
        )
        pagination_parameters.item_count = total
        return events
