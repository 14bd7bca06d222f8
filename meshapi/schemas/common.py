"""Pieces every resource's schemas share."""

from __future__ import annotations

import math

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


MAX_JSON_DEPTH = 20


def text(max_length: int, *, required: bool = False, **kwargs: object) -> ma.fields.String:
    """A string field that rejects empty, blank, oversized and NUL-bearing values."""
    return ma.fields.String(
        required=required,
        validate=[validate.Length(min=1, max=max_length), not_blank, no_nul],
        **kwargs,  # type: ignore[arg-type]
    )


def json_object(**kwargs: object) -> ma.fields.Dict:
    """A free-form JSON object (context, metadata) that Postgres' JSONB can store."""
    return ma.fields.Dict(
        keys=ma.fields.String(validate=[validate.Length(1, 200), no_nul]),
        validate=storable_json,
        **kwargs,  # type: ignore[arg-type]
    )


def not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be empty or blank.")


def no_nul(value: str) -> None:
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")


def storable_json(value: object, depth: int = 0) -> None:
    """No NUL, NaN or Infinity (JSONB refuses them) and no nesting past MAX_JSON_DEPTH."""
    if depth > MAX_JSON_DEPTH:
        raise ma.ValidationError(f"Must not nest deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, str):
        no_nul(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ma.ValidationError("Must not contain NaN or Infinity.")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(str(key))
            storable_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            storable_json(item, depth + 1)


class UsageSchema(ma.Schema):
    input_tokens = ma.fields.Integer()
    output_tokens = ma.fields.Integer()
    cost_usd = ma.fields.Float()
