"""/api/mesh/tenant: the calling key's tenant as a whole; today, its erasure (admin scope)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort

from meshapi.auth import principal
from meshapi.blueprint import Blueprint
from meshapi.context import mesh
from meshapi.schemas.audit import ConfirmHeadersSchema, ErasedSchema
from meshapi.schemas.errors import ErrorSchema

CONFIRM_HEADER = "Mesh-Confirm"

blp = Blueprint(
    "tenant",
    __name__,
    url_prefix="/api/mesh/tenant",
    description="The calling key's tenant as a whole (admin scope)",
)


@blp.route("")
class Tenant(MethodView):
    @blp.arguments(ConfirmHeadersSchema(), location="headers")
    @blp.response(202, ErasedSchema)
    @blp.alt_response(428, schema=ErrorSchema, description=f"No `{CONFIRM_HEADER}: erase <tenant>`")
    def delete(self, headers: dict) -> object:
        """Erase the tenant: every network, task, memory item and API key (this one too),
        and its keys in Redis; only the audit trail is kept. Send `Mesh-Confirm: erase <tenant>`.

        Answered once the record and Redis hold nothing of the tenant; API processes that
        verified one of its keys in the last 2 s refuse it within 2 s more.
        """
        tenant_id = principal().tenant_id
        wanted = f"erase {tenant_id}"
        if headers.get("confirm") != wanted:
            problem = f"send the header `{CONFIRM_HEADER}: {wanted}` to erase this tenant"
            abort(428, message=problem, messages={"headers": {CONFIRM_HEADER: [problem]}})
        return mesh().erasure.erase_tenant(tenant_id)
