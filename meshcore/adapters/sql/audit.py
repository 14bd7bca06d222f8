"""The audit trail in the record (the AuditTrail port): one INSERT per event, never an UPDATE.

Each append is its own short transaction, so an event is kept whatever the request's own
work did. An event without a tenant (refused before a key was verified) is written across
tenants: row-level security admits a NULL tenant_id to no tenant's transaction (tenancy.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC

import sqlalchemy as sa

from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.tables import audit_events
from meshcore.adapters.sql.uow import unavailable
from meshcore.domain.audit import AuditEvent
from meshcore.ports import Page

_c = audit_events.c


class SqlAuditTrail:
    def __init__(self, engine: sa.Engine) -> None:
        tenancy.install(engine)
        self._engine = engine

    def append(self, event: AuditEvent) -> None:
        row = {
            "tenant_id": event.tenant_id,
            "key_id": _clip(event.key_id, 16),
            "method": event.method[:8],
            "route": _clip(event.route, 200),
            "resource_id": _clip(event.resource_id, 64),
            "status": event.status,
            "at": event.at,
        }
        with self._begin(event.tenant_id) as db:
            db.execute(audit_events.insert().values(row))

    def list(
        self, tenant_id: str, page: Page, *, before: int | None = None
    ) -> tuple[list[AuditEvent], int]:
        mine = [_c.tenant_id == tenant_id]
        if before is not None:
            mine.append(_c.id < before)
        query = (
            audit_events.select()
            .where(*mine)
            .order_by(_c.id.desc())
            .offset(page.offset)
            .limit(page.limit)
        )
        with self._begin(tenant_id) as db:
            rows = db.execute(query).mappings().all()
            total = db.execute(sa.select(sa.func.count()).where(*mine)).scalar_one()
        return [_event(r) for r in rows], total

    @contextmanager
    def _begin(self, tenant_id: str | None) -> Iterator[sa.Connection]:
        # Any database error, not only an outage: the caller must go on without the event.
        engine = self._engine if tenant_id is not None else tenancy.across_tenants(self._engine)
        try:
            with engine.connect() as connection:
                if tenant_id is not None:
                    connection = tenancy.scoped(connection, tenant_id)
                with connection.begin():
                    yield connection
        except sa.exc.DBAPIError as exc:
            raise unavailable(exc) from exc


def _clip(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]


def _event(row: sa.RowMapping) -> AuditEvent:
    at = row["at"]
    return AuditEvent(
        id=row["id"],
        tenant_id=row["tenant_id"],
        key_id=row["key_id"],
        method=row["method"],
        route=row["route"],
        resource_id=row["resource_id"],
        status=row["status"],
        at=at if at.tzinfo is not None else at.replace(tzinfo=UTC),  # SQLite keeps naive times
    )
