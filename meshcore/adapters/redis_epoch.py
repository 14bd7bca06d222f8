"""The fleet's epoch in Redis: one key, written once, that vanishes when Redis loses its data.

A flushed or restarted-empty Redis takes the queues, the unacknowledged messages and the
chord counters with it, and says nothing; the key's absence (or a new value, when another
process noticed first) is how the sweeper learns of it without waiting for heartbeats to age.
"""

from __future__ import annotations

from datetime import datetime

import redis

from meshcore.domain.errors import Unavailable

KEY = "mesh:epoch"


class EpochUnavailable(Unavailable):
    """Redis did not answer, so whether it lost its data is not known yet."""


class RedisEpoch:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._seen: str | None = None  # the epoch this process last saw

    def start(self, now: datetime) -> None:
        try:
            self._client.set(KEY, now.isoformat(), nx=True)
        except redis.RedisError as exc:
            raise EpochUnavailable(f"redis is unavailable: {type(exc).__name__}") from exc

    def lost_since(self, now: datetime) -> datetime | None:
        try:
            if self._client.set(KEY, now.isoformat(), nx=True):
                current, is_lost = now.isoformat(), True
            else:
                raw = self._client.get(KEY)
                if raw is None:
                    return None  # deleted between the two commands: the next check begins one
                current = raw.decode()
                is_lost = self._seen is not None and current != self._seen
        except redis.RedisError as exc:
            raise EpochUnavailable(f"redis is unavailable: {type(exc).__name__}") from exc
        self._seen = current
        return datetime.fromisoformat(current) if is_lost else None
