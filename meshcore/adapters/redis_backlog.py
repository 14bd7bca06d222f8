"""The Backlog port on the broker's Redis: the messages waiting on the task queues, summed."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from meshcore.adapters import redis_tls
from meshcore.adapters.redis_gauges import queue_depths
from meshcore.domain.errors import Unavailable
from meshcore.settings import Settings

# A submit that reads the backlog waits at most this long for a Redis that hangs, once (no
# retries), and is then admitted; the other submits of its process meanwhile never wait.
TIMEOUT_SECONDS = 0.5


def connect(settings: Settings) -> redis.Redis:
    """A client of MESH_REDIS_URL for the backlog: short timeouts, no retries."""
    return redis_tls.connect(
        settings,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


class RedisBacklog:
    """What waits on `queues` (every priority list of each); Unavailable while Redis is away."""

    def __init__(self, client: redis.Redis, queues: Sequence[str], steps: Sequence[int]) -> None:
        self._client, self._queues, self._steps = client, queues, steps

    def depth(self) -> int:
        try:
            return sum(queue_depths(self._client, self._queues, self._steps).values())
        except redis.RedisError as exc:
            raise Unavailable(f"the queues' backlog cannot be read: {type(exc).__name__}") from exc
