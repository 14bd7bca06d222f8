"""Pieces every resource's schemas share."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate


class ErrorSchema(ma.Schema):
    """Every 4xx and 5xx body: the same shape as flask-smorest's validation errors."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status phrase"})
    message = ma.fields.String(metadata={"description": "What went wrong"})
    errors = ma.fields.Dict(
        metadata={"description": "Per location (json, query, path), field -> list of problems"}
    )


def text(max_length: int, *, required: bool = False, **kwargs: object) -> ma.fields.String:
    """A string field that rejects empty and oversized values with a clear message."""
    return ma.fields.String(
        required=required,
        validate=validate.Length(min=1, max=max_length),
        **kwargs,  # type: ignore[arg-type]
    )


class UsageSchema(ma.Schema):
    input_tokens = ma.fields.Integer()
    output_tokens = ma.fields.Integer()
    cost_usd = ma.fields.Float()
