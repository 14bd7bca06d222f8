"""The audit trail of the API: every write and every refused request under /api/mesh.

An event is appended once the response is decided (after_request, which also runs for the
errors the handlers answer, refusals before any view included), in one INSERT of its own. It
names the caller (key id and tenant), the method, the route as the OpenAPI document writes it
(/api/mesh/networks/{network_id}, never the raw path), the resource id (from the path, or the
created resource's) and the status; never a body, a query string or a secret.

Whose trail a refusal goes to: the key's tenant once the key is verified (a 403, a 404), or a
revoked key whose secret is right; otherwise no tenant at all, so that no one can write into,
or read, a tenant's trail with a key they do not hold. A trail that cannot be written costs
the event and a warning, never the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog
from flask import Flask, Response, current_app, g, request

from meshapi.auth import API
from meshapi.context import mesh
from meshcore.domain.audit import AuditEvent, is_audited
from meshcore.domain.errors import Unauthenticated, Unavailable

log = structlog.get_logger(__name__)

# <id(network):network_id>, <string(length=16):key_id>, <path:name>
_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_CREATED = frozenset({201, 202})
_ROUTES = "mesh.audit_routes"


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    template: str


def install(app: Flask) -> None:
    app.after_request(_record)


def route_template(rule: str) -> str:
    """A Flask URL rule as the OpenAPI document writes its path: {name} for each variable."""
    return _VARIABLE.sub(lambda m: "{" + m["name"] + "}", rule)


def _record(response: Response) -> Response:
    path, method, status = request.path, request.method, response.status_code
    if not (path == API or path.startswith(f"{API}/")) or not is_audited(method, status):
        return response
    tenant_id, key_id = _caller()
    event = AuditEvent(
        tenant_id=tenant_id,
        key_id=key_id,
        method=method,
        route=_route(),
        resource_id=_resource_id(response),
        status=status,
        at=mesh().clock.now(),
    )
    try:
        mesh().audit.append(event)
    except Unavailable as exc:
        log.warning(
            "audit.not_recorded", method=method, route=event.route, status=status, error=str(exc)
        )
    return response


def _caller() -> tuple[str | None, str | None]:
    """(tenant, key id) to charge the request to."""
    principal = g.get("principal")
    if principal is not None:
        return principal.tenant_id, principal.key_id
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None, None
    keys = mesh().keys
    try:
        # Refused after its key was verified (it lacks the scope): the verification is cached.
        caller = keys.authenticate(token)
    except Unauthenticated:
        key_id, tenant_id = keys.claimant(token)
        return tenant_id, key_id
    return caller.tenant_id, caller.key_id


def _route() -> str | None:
    if request.url_rule is not None:
        return route_template(request.url_rule.rule)
    # Routing failed (a malformed id, a method the route lacks): the route it was aimed at,
    # found by shape alone; None when the path is no route's.
    for route in _routes():
        if route.pattern.fullmatch(request.path):
            return route.template
    return None


def _routes() -> list[_Route]:
    routes = current_app.extensions.get(_ROUTES)
    if routes is None:
        routes = [_shape(r.rule) for r in current_app.url_map.iter_rules()]
        # Fixed segments before variables: /keys/{key_id} must not take /networks/{id}.
        routes.sort(key=lambda r: r.template.count("{"))
        current_app.extensions[_ROUTES] = routes
    return routes


def _shape(rule: str) -> _Route:
    parts, last = [], 0
    for m in _VARIABLE.finditer(rule):
        parts.append(re.escape(rule[last : m.start()]))
        parts.append(".+" if m["converter"] == "path" else "[^/]+")
        last = m.end()
    parts.append(re.escape(rule[last:]))
    return _Route(re.compile("".join(parts)), route_template(rule))


def _resource_id(response: Response) -> str | None:
    if request.method == "POST" and response.status_code in _CREATED and response.is_json:
        body = response.get_json(silent=True)
        created = body.get("id") if isinstance(body, dict) else None
        if isinstance(created, str):
            return created
    ids = [v for k, v in (request.view_args or {}).items() if k.endswith("_id")]
    return str(ids[-1]) if ids else None  # the innermost: a task, not its network
