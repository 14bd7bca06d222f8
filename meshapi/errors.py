"""The one place that knows HTTP status codes: every error leaves as the same JSON shape."""

from __future__ import annotations

from http import HTTPStatus

import structlog
from flask import Flask, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from meshapi.schemas.errors import ErrorSchema
from meshcore.domain.errors import (
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidPlan,
    MeshError,
    ModelUnavailable,
    NotFound,
    QuotaExceeded,
    TooManyTasksInFlight,
    Unauthenticated,
    Unavailable,
)

log = structlog.get_logger(__name__)

STATUS: dict[type[MeshError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidPlan: 422,
    InvalidInput: 422,
    IdempotencyKeyReused: 422,
    # A retry later can pass the tasks' quota; the others need something removed first.
    TooManyTasksInFlight: 429,
    QuotaExceeded: 422,
    ModelUnavailable: 503,
    Unavailable: 503,
}


class MeshApi(Api):
    """flask-smorest's Api, whose HTTP errors always carry a message."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> tuple[dict, int, dict]:
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload:
            payload["message"] = _summary(payload.get("errors")) or error.description
        if isinstance(error, RequestEntityTooLarge) and request.max_content_length:
            limit = request.max_content_length
            payload["message"] = f"the request body is larger than the limit of {limit} bytes"
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers = {**headers, "Allow": ", ".join(sorted(error.valid_methods))}
        return payload, code, headers


def register(app: Flask) -> None:
    @app.errorhandler(MeshError)
    def _mesh_error(exc: MeshError) -> tuple[dict, int, dict[str, str]]:
        code = next((c for cls, c in STATUS.items() if isinstance(exc, cls)), 400)
        payload: dict[str, object] = {
            "code": code,
            "status": HTTPStatus(code).phrase,
            "message": str(exc),
        }
        field = getattr(exc, "field", None)
        if field:
            payload["errors"] = {"json": {field: [str(exc)]}}
        if isinstance(exc, IdempotencyKeyReused):
            payload["errors"] = {"headers": {exc.header: [str(exc)]}}
        if isinstance(exc, QuotaExceeded):
            payload["errors"] = {"quota": {exc.quota: [f"at most {exc.limit}"]}}
        headers = {}
        if isinstance(exc, Unavailable | TooManyTasksInFlight):
            headers["Retry-After"] = str(exc.retry_after_seconds)
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="mesh"'
        return payload, code, headers


def _summary(errors: object) -> str:
    """'json.name: Missing data for required field.' from webargs' nested error dict."""
    if not isinstance(errors, dict):
        return ""
    parts = []
    for location, fields in errors.items():
        for field, problems in _flatten(fields):
            parts.append(
                f"{location}.{field}: {' '.join(problems)}"
                if field
                else f"{location}: {' '.join(problems)}"
            )
    return "; ".join(parts)


def _flatten(node: object, prefix: str = "") -> list[tuple[str, list[str]]]:
    if isinstance(node, list):
        return [(prefix, [str(p) for p in node])]
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            name = "" if key == "_schema" else str(key)
            found += _flatten(value, f"{prefix}.{name}".strip(".") if name else prefix)
        return found
    return [(prefix, [str(node)])]
