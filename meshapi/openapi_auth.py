"""The OpenAPI document's side of authentication: the bearer scheme (the docs UI's Authorize
button) and the 401 and 403 that every /api/mesh operation may answer."""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin

from meshapi.auth import API, OPEN, SCHEME

ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
ANSWERS = {
    "401": {"description": "No API key, a malformed, unknown or revoked one", **ERROR},
    "403": {"description": "The key lacks the scope this operation needs", **ERROR},
}
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key, `mesh_<id>_<secret>` (`mesh keys create`)",
}


class AuthPlugin(BasePlugin):
    def init_spec(self, spec: Any) -> None:
        spec.components.security_scheme(SCHEME, SECURITY_SCHEME)

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        if path is None or operations is None or not path.startswith(API) or path.startswith(OPEN):
            return
        for operation in operations.values():
            operation.setdefault("security", [{SCHEME: []}])
            responses = operation.setdefault("responses", {})
            for code, answer in ANSWERS.items():
                responses.setdefault(code, answer)
