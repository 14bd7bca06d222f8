"""The `Idempotency-Key` header of creates: validated, and tied to the request it came with."""

from __future__ import annotations

import hashlib
import json

import marshmallow as ma
from flask import request
from marshmallow import validate

from meshcore.domain.idempotency import MAX_KEY_LENGTH, IdempotencyKey


class IdempotencyHeaderSchema(ma.Schema):
    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=[
            validate.Length(1, MAX_KEY_LENGTH),
            validate.Regexp(r"^[\x20-\x7e]+$", error="must be printable ASCII characters"),
        ],
        metadata={
            "description": "Makes this create safe to retry: within 24 h the same key with the "
            "same request answers what the first one made and creates nothing; with another "
            "request it answers 422"
        },
    )


def idempotency_of(headers: dict) -> IdempotencyKey | None:
    """The request's key, with a fingerprint of its method, path and body (as JSON reads it,
    so that key order and spacing do not make a retry a different request)."""
    key = headers.get("idempotency_key")
    if key is None:
        return None
    body = json.dumps(request.get_json(silent=True), sort_keys=True, separators=(",", ":"))
    text = f"{request.method} {request.path}\n{body}"
    return IdempotencyKey(key, hashlib.sha256(text.encode()).hexdigest())
