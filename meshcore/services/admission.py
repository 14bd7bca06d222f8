"""Admission control: while the fleet's backlog is past its bound, no new task is taken.

Past the bound a new task would only wait in the queues behind work the fleet cannot reach
soon, and every task behind it would wait longer. Refusing it at once (Overloaded: 503 with
Retry-After) keeps the wait of every accepted task bounded and tells the client when to come
back, instead of letting it time out on a task Mesh did accept. This bound is the fleet's;
each tenant's is its tasks_in_flight quota (429).

The check sits on the submit's hot path, so the depth is read at most once per
`cache_seconds` in each process: a burst of submits costs one Redis round trip per process
per interval. A depth that cannot be read admits: the submit then goes on as it did before
admission control existed, and what it accepts is kept (the record is committed first, and
the sweeper re-drives an enqueue that failed).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import structlog

from meshcore.domain.errors import Overloaded, Unavailable
from meshcore.ports import Backlog

log = structlog.get_logger(__name__)

# How stale a depth may be. Between two reads a process admits at the last one's word, so
# a burst passes the bound by at most what arrives in one interval.
CACHE_SECONDS = 0.5
# How fast the backlog drains, in messages a second, for Retry-After. A task is about 8
# messages an iteration (its plan, a step per agent, the wave's collect, the review), up to 3
# iterations, and a 2-core box finishes 5 to 30 tasks a second: some 100 to 700 messages. The
# slow end is assumed, so that a client that waits as told finds room more often than not.
DRAIN_PER_SECOND = 100.0
# At least a second (the header counts whole seconds); at most a minute, so a client is never
# sent away for long on a guess.
MIN_RETRY_SECONDS, MAX_RETRY_SECONDS = 1, 60


class Admission:
    """Answers whether a new task may be taken now, from the fleet's backlog; one per process."""

    def __init__(
        self,
        backlog: Backlog,
        *,
        max_backlog: int,
        cache_seconds: float = CACHE_SECONDS,
        drain_per_second: float = DRAIN_PER_SECOND,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backlog, self._max_backlog = backlog, max_backlog
        self._cache_seconds, self._drain_per_second = cache_seconds, drain_per_second
        # Monotonic, not the clock: a wall clock set back must not stretch the cache.
        self._timer = timer
        # Held only to read or swap these fields, never across the read from Redis: a lock
        # made before gevent patched threading would block every greenlet of the process.
        self._lock = threading.Lock()
        self._depth: int | None = None  # None: never read, or the last read failed
        self._read_at: float | None = None
        self._is_reading = False

    def refusal(self) -> Overloaded | None:
        """Overloaded while the backlog is past its bound (not raised), else None."""
        depth = self._current_depth()
        if depth is None or depth <= self._max_backlog:
            return None
        return Overloaded(
            backlog=depth, limit=self._max_backlog, retry_after_seconds=self._retry_after(depth)
        )

    def check(self) -> None:
        """Raise Overloaded while the backlog is past its bound."""
        if (refused := self.refusal()) is not None:
            raise refused

    def _current_depth(self) -> int | None:
        """The last depth read, read anew once it is older than the interval.

        One caller reads; those that come meanwhile are answered with the last depth, so
        none of them waits on Redis.
        """
        with self._lock:
            is_fresh = (
                self._read_at is not None and self._timer() - self._read_at < self._cache_seconds
            )
            if is_fresh or self._is_reading:
                return self._depth
            self._is_reading = True
        depth = None
        try:
            depth = self._backlog.depth()
        except Unavailable as exc:
            # Once per interval at most: the failed read is kept as long as a good one.
            log.warning("admission.backlog_unread", error=str(exc), admitting=True)
        finally:
            with self._lock:
                self._depth, self._read_at, self._is_reading = depth, self._timer(), False
        return depth

    def _retry_after(self, depth: int) -> int:
        """Seconds until the messages past the bound have drained, at the assumed rate."""
        seconds = math.ceil((depth - self._max_backlog) / self._drain_per_second)
        return min(MAX_RETRY_SECONDS, max(MIN_RETRY_SECONDS, seconds))
