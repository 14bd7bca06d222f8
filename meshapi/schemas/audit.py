"""The audit trail, out; and the tenant erasure's answer."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate


class AuditQueryArgsSchema(ma.Schema):
    before = ma.fields.Integer(
        validate=validate.Range(min=1),
        metadata={
            "description": "Only events older than this event id: keep the first page's first "
            "id here to page through a trail that grows meanwhile"
        },
    )


class AuditEventSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "Grows with every event: newest is largest"})
    key_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "The key that made the request (dev: MESH_DEV_API_KEY)"},
    )
    method = ma.fields.String()
    route = ma.fields.String(
        allow_none=True,
        metadata={"description": "The route as this document writes it; null: no such route"},
    )
    resource_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "The id in the path (the innermost), or the created resource's"},
    )
    status = ma.fields.Integer(metadata={"description": "The HTTP status it was answered"})
    at = ma.fields.DateTime()


class ErasedSchema(ma.Schema):
    tenant = ma.fields.String(attribute="tenant_id")
    rows = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "Rows removed per table (the audit trail is kept)"},
    )
    redis_keys = ma.fields.Integer(metadata={"description": "Keys removed from Redis"})


class ConfirmHeadersSchema(ma.Schema):
    confirm = ma.fields.String(
        data_key="Mesh-Confirm",
        metadata={"description": "Must read `erase <tenant>`, the calling key's tenant"},
    )
