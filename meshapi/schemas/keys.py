"""API keys, in and out: the full key only in the answer that creates it."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import text
from meshcore.domain.keys import Scope

SCOPES = (
    "read: GETs; write: creates, submits and deletes of networks, agents, tasks and memory; "
    "admin: keys and tenant-wide operations"
)


class Scopes(ma.fields.List):
    """Scopes in a stable order: the record keeps them as a set."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(ma.fields.Enum(Scope, by_value=True), **kwargs)  # type: ignore[arg-type]

    def _serialize(self, value: object, attr: str | None, obj: object, **kwargs: object) -> object:
        ordered = sorted(value, key=list(Scope).index) if value is not None else None  # type: ignore[call-overload]
        return super()._serialize(ordered, attr, obj, **kwargs)


class KeyCreateSchema(ma.Schema):
    name = text(200, metadata={"description": "What the key is for"})
    scopes = Scopes(
        required=True, validate=validate.Length(1, len(Scope)), metadata={"description": SCOPES}
    )


# What the docs UI fills a request in with: each must succeed as sent (a test posts them).
KEY_EXAMPLE = {"name": "Backend of the email platform", "scopes": ["read", "write"]}


class KeySchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "Public: names the key in lists and logs"})
    tenant = ma.fields.String(attribute="tenant_id")
    name = ma.fields.String()
    scopes = Scopes()
    created_at = ma.fields.DateTime()
    revoked_at = ma.fields.DateTime(allow_none=True)


class KeyCreatedSchema(KeySchema):
    key = ma.fields.String(
        metadata={"description": "The whole key, shown this once: Mesh keeps only a hash of it"}
    )

    class Meta:
        exclude = ("revoked_at",)
