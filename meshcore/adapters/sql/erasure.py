"""Every row of one tenant (the TenantRecord port): what a tenant-wide erasure deletes.

The tables come from the schema itself, so a table added later with a tenant_id column is
erased with the rest. Children go before their parents, each counted as it goes (a cascade
would delete them uncounted); the audit trail stays, and it holds no content.
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog

from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.tables import audit_events, metadata
from meshcore.adapters.sql.uow import UNAVAILABLE, unavailable

log = structlog.get_logger(__name__)

KEPT = frozenset({audit_events.name})


def erased_tables() -> list[sa.Table]:
    """The tenant-owned tables an erasure deletes from, children first."""
    return [
        t for t in reversed(metadata.sorted_tables) if t.name not in KEPT and "tenant_id" in t.c
    ]


class SqlTenantRecord:
    def __init__(self, engine: sa.Engine) -> None:
        tenancy.install(engine)
        self._engine = engine

    def erase(self, tenant_id: str) -> dict[str, int]:
        removed: dict[str, int] = {}
        try:
            with self._engine.connect() as connection:
                db = tenancy.scoped(connection, tenant_id)
                with db.begin():
                    for table in erased_tables():
                        done = db.execute(table.delete().where(table.c.tenant_id == tenant_id))
                        removed[table.name] = done.rowcount
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        return removed
