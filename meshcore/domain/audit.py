"""The audit trail: who (key, tenant) did what (method, route, resource) with what outcome, when.

An event never holds content: no body, no query string, no raw path, no secret. A request
refused before any key was verified belongs to no tenant (`tenant_id` None), so no tenant's
trail can be made to show it and no tenant can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class AuditEvent:
    tenant_id: str | None
    key_id: str | None
    method: str
    route: str | None  # the URL rule, /api/mesh/networks/{network_id}; None: no such route
    resource_id: str | None
    status: int
    at: datetime
    id: int | None = None  # given by the trail when the event is appended


def is_audited(method: str, status: int) -> bool:
    """Every write, whatever its outcome, and every refused request."""
    return method in WRITES or 400 <= status < 500
