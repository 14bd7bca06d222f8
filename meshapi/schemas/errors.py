"""The body of every error answer."""

from __future__ import annotations

import marshmallow as ma


class ErrorSchema(ma.Schema):
    """Every 4xx and 5xx body: the same shape as flask-smorest's validation errors."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status phrase"})
    message = ma.fields.String(metadata={"description": "What went wrong"})
    errors = ma.fields.Dict(
        metadata={"description": "Per location (json, query, path), field -> list of problems"}
    )
