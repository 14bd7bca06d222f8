"""Who may call: every /api/mesh request carries `Authorization: Bearer <key>`, whose tenant
is the request's tenant and whose scopes say what it may do.

The OpenAPI document and the docs UI stay open (the UI is where a key is entered); /healthz,
/readyz and /metrics are outside /api/mesh.
"""

from __future__ import annotations

from flask import Flask, g, request

from meshapi.context import mesh
from meshcore.domain.errors import Forbidden, Unauthenticated
from meshcore.domain.keys import Principal, Scope

API = "/api/mesh"
OPEN = (f"{API}/openapi.json", f"{API}/docs")
# Keys and tenant-wide operations; every other path needs read for a GET, write otherwise.
ADMIN_PATHS = (f"{API}/keys", f"{API}/tenant", f"{API}/audit")
READS = frozenset({"GET", "HEAD", "OPTIONS"})
SCHEME = "bearerAuth"


def install(app: Flask) -> None:
    app.before_request(_authenticate)


def principal() -> Principal:
    """The caller of this request (authenticated before any view runs)."""
    return g.principal


def required_scope(method: str, path: str) -> Scope:
    if path.startswith(ADMIN_PATHS):
        return Scope.ADMIN
    return Scope.READ if method in READS else Scope.WRITE


def _authenticate() -> None:
    path = request.path
    if not (path == API or path.startswith(f"{API}/")) or path.startswith(OPEN):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("this request needs an API key: Authorization: Bearer <key>")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must read `Bearer <key>`")
    caller = mesh().keys.authenticate(token.strip())
    needed = required_scope(request.method, path)
    if not caller.may(needed):
        raise Forbidden(f"this key lacks the {needed} scope this request needs")
    g.principal = caller
