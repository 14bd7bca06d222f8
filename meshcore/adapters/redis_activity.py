"""Which agents are busy: each step holds a lease in Redis while its model call runs.

    mesh:{tenant}:agent:{agent}:calls    sorted set of the agent's steps, scored by lease end

A step adds itself when its call begins and removes itself when the call ends; one whose
worker died drops out when its lease ends, so a count never stays stuck above zero. This is
what the API shows as an agent's in_flight and busy status: it is live state, not record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import redis
import structlog

log = structlog.get_logger(__name__)


class RedisAgentActivity:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def began(
        self, tenant_id: str, agent_id: UUID, step: str, *, now: datetime, until: datetime
    ) -> None:
        key = _key(tenant_id, agent_id)
        try:
            pipe = self._redis.pipeline(transaction=False)
            # Leases that ended go as a new one comes: the set stays as small as the agent's
            # concurrency, and the key expires after the agent's last lease.
            pipe.zremrangebyscore(key, "-inf", f"({now.timestamp()}")
            pipe.zadd(key, {step: until.timestamp()})
            pipe.expireat(key, int(until.timestamp()) + 1)
            pipe.execute()
        except redis.RedisError as exc:
            # Only the busy status is lost; the step itself goes on.
            log.warning("activity.unavailable", error=str(exc))

    def ended(self, tenant_id: str, agent_id: UUID, step: str) -> None:
        try:
            self._redis.zrem(_key(tenant_id, agent_id), step)
        except redis.RedisError as exc:
            log.warning("activity.unavailable", error=str(exc))

    def in_flight(
        self, tenant_id: str, agent_ids: Sequence[UUID], *, now: datetime
    ) -> dict[UUID, int]:
        """Steps running per agent; zero for all while Redis is away."""
        if not agent_ids:
            return {}
        try:
            pipe = self._redis.pipeline(transaction=False)
            for agent_id in agent_ids:
                pipe.zcount(_key(tenant_id, agent_id), f"({now.timestamp()}", "+inf")
            counts = pipe.execute()
        except redis.RedisError as exc:
            log.warning("activity.unavailable", error=str(exc))
            return dict.fromkeys(agent_ids, 0)
        return dict(zip(agent_ids, counts, strict=True))

    def forget(self, tenant_id: str, agent_ids: Sequence[UUID]) -> None:
        """Drop the agents' leases; a Redis that is away keeps them only until they end."""
        if not agent_ids:
            return
        try:
            self._redis.unlink(*(_key(tenant_id, a) for a in agent_ids))
        except redis.RedisError as exc:
            log.warning("activity.unavailable", error=str(exc))


def _key(tenant_id: str, agent_id: UUID) -> str:
    return f"mesh:{tenant_id}:agent:{agent_id}:calls"
