"""A tenant's keys in Redis, all under one prefix (the TenantState port): mesh:{tenant}:*.

Every key Mesh keeps for a tenant carries it in its name (the memory view, the agents'
leases), so erasing a tenant from Redis is one pattern. A tenant id may hold the pattern's
special characters (`*`, `?`, `[`): they are escaped, so that tenant `a*` never matches `ab`.
"""

from __future__ import annotations

import re

import redis

from meshcore.domain.errors import MemoryViewUnavailable

BATCH = 500


class RedisTenantState:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def purge(self, tenant_id: str) -> int:
        pattern = f"mesh:{glob_escape(tenant_id)}:*"
        removed = 0
        try:
            batch: list[bytes] = []
            for key in self._redis.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) == BATCH:
                    removed += self._redis.unlink(*batch)
                    batch = []
            if batch:
                removed += self._redis.unlink(*batch)
        except redis.RedisError as exc:
            raise MemoryViewUnavailable(f"Redis is unavailable: {exc}") from exc
        return removed


def glob_escape(text: str) -> str:
    """`text` matched literally by Redis' glob-style MATCH."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
