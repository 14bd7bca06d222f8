"""Erasing a tenant (GDPR): every row, Redis key and cached key of it, but its audit trail.

    purge Redis -> erase the record -> forget cached keys -> wait -> erase and purge again

Redis goes first: if it is away the erasure is refused before the record is touched, and a
retry does the whole again (each step is idempotent). The second pass waits out the key
cache of the other API processes (a key they verified may serve one more request) and a step
that was running, so what either wrote in between goes too. The audit trail is kept: it
holds no content, and it records the erasure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from meshcore.ports import TenantRecord, TenantState
from meshcore.services.keys import KeyService

log = structlog.get_logger(__name__)

# Past the other processes' key cache (2 s), with room for a request they were serving.
SETTLE_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class Erased:
    """What an erasure removed: rows per table, and Redis keys."""

    tenant_id: str
    rows: dict[str, int] = field(default_factory=dict)
    redis_keys: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.redis_keys


class ErasureService:
    def __init__(
        self,
        *,
        record: TenantRecord,
        state: TenantState,
        keys: KeyService,
        settle_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._record, self._state, self._keys, self._sleep = record, state, keys, sleep
        self._settle = (
            settle_seconds
            if settle_seconds is not None
            else keys.cache_seconds + SETTLE_MARGIN_SECONDS
        )

    def erase_tenant(self, tenant_id: str) -> Erased:
        """Remove everything of the tenant but its audit trail; its keys stop working."""
        redis_keys = self._state.purge(tenant_id)
        rows = self._record.erase(tenant_id)
        self._keys.forget(tenant_id)
        self._sleep(self._settle)
        late = self._record.erase(tenant_id)
        redis_keys += self._state.purge(tenant_id)
        erased = Erased(
            tenant_id=tenant_id,
            rows={table: rows[table] + late.get(table, 0) for table in rows},
            redis_keys=redis_keys,
        )
        log.warning("tenant.erased", tenant=tenant_id, rows=erased.rows, redis_keys=redis_keys)
        return erased
