"""/api/mesh/keys: the admin key's tenant's API keys."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Page

from meshapi.auth import principal
from meshapi.blueprint import Blueprint
from meshapi.context import mesh
from meshapi.schemas.errors import ErrorSchema
from meshapi.schemas.keys import KEY_EXAMPLE, KeyCreatedSchema, KeyCreateSchema, KeySchema

blp = Blueprint(
    "keys",
    __name__,
    url_prefix="/api/mesh/keys",
    description="API keys of the calling key's tenant (admin scope)",
)


@blp.route("")
class Keys(MethodView):
    @blp.arguments(KeyCreateSchema(), example=KEY_EXAMPLE)
    @blp.response(201, KeyCreatedSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict) -> object:
        """Create a key of this tenant; the answer is the only time its secret is shown."""
        key, text = mesh().keys.create(tenant_id=principal().tenant_id, **body)
        return {**vars(key), "key": text}

    @blp.response(200, KeySchema(many=True))
    @blp.paginate(Page)
    def get(self) -> object:
        """The tenant's keys, oldest first, revoked ones too; never a secret."""
        return mesh().keys.list(principal().tenant_id)


@blp.route("/<string(length=16):key_id>")
class KeyById(MethodView):
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorSchema)
    def delete(self, key_id: str) -> None:
        """Revoke a key: within 5 s every API process refuses it. Revoking twice is a no-op."""
        mesh().keys.revoke(key_id, tenant_id=principal().tenant_id)
