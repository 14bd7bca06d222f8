"""Each task's revision in Redis, and waits for the next one (the TaskRevisions port).

    mesh:{tenant}:mem:{network}:rev:{task}  "<revision> <status>"; never lowered; expires
    mesh:{tenant}:gone                      sorted set: networks being deleted, by when
    mesh:revisions                          channel: "<task> <revision> <status> <tenant>"

The record is the truth: a unit of work announces what it changed once it has committed, and
this copy lets a conditional GET answer 304 without reading Postgres. The key names the
tenant and the network, so finding it is proof enough that the task is theirs; it sits under
the network's prefix, so deleting the network (which purges that prefix) takes it too. A
worker's announcement can arrive after that purge (it committed just before the delete); the
network's id in the tenant's `gone` set, for a day, keeps it from making the key again.

One listener per process reads the channel and wakes that process's waiters. A waiter
registers before it reads the revision, so a change between the two is never missed; it also
looks again every few seconds, so a message lost on a reconnect costs at most that.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from uuid import UUID

import redis
import structlog

from meshcore.domain.errors import MemoryViewUnavailable
from meshcore.domain.task import Revision, TaskChange, TaskStatus

log = structlog.get_logger(__name__)

CHANNEL = "mesh:revisions"
# Long enough for any client's conditional GETs; a key that expired is read from the record.
TTL_SECONDS = 24 * 3600
# A waiter looks at the revision again about this often (jittered) even if no message woke it.
RECHECK_SECONDS = 5.0
# Announcements that failed (Redis away) are kept, at most this many, for the next publish.
MAX_PENDING = 10_000

# Set-if-greater and tell, in one step: two commits that announce out of order cannot
# lower the revision a reader sees.
_PUBLISH = """
if redis.call('ZSCORE', KEYS[2], ARGV[6]) then
  return 0
end
local current = redis.call('GET', KEYS[1])
if current and tonumber(string.match(current, '^%d+')) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""


class RevisionsUnavailable(MemoryViewUnavailable):
    """Redis, which holds the live copy of task revisions, cannot be reached."""


class RedisTaskRevisions:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._publish = client.register_script(_PUBLISH)
        self._pending: deque[TaskChange] = deque(maxlen=MAX_PENDING)
        self._listener: _Listener | None = None
        self._lock = threading.Lock()

    def current(self, tenant_id: str, network_id: UUID, task_id: UUID) -> Revision | None:
        try:
            raw = self._redis.get(_key(tenant_id, network_id, task_id))
        except redis.RedisError as exc:
            raise RevisionsUnavailable(f"task revisions are unavailable: {exc}") from exc
        return _parse(raw) if raw is not None else None

    def wait(
        self, tenant_id: str, network_id: UUID, task_id: UUID, *, after: int, timeout: float
    ) -> Revision | None:
        deadline = time.monotonic() + timeout
        with self._listening().watching(tenant_id, task_id) as woken:
            while True:
                found = self.current(tenant_id, network_id, task_id)
                if found is not None and found.revision != after:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                # Spread out: waiters that arrived together would otherwise look together.
                woken.wait(min(left, RECHECK_SECONDS * random.uniform(0.5, 1.5)))
                woken.clear()

    def publish(self, changes: Sequence[TaskChange]) -> None:
        batch = [*self._pending, *changes]
        self._pending.clear()
        try:
            for change in batch:
                key = _key(change.tenant_id, change.network_id, change.task_id)
                # The tenant last: it is the one part that may hold a space.
                message = " ".join(
                    (
                        str(change.task_id),
                        str(change.revision),
                        change.status.value,
                        change.tenant_id,
                    )
                )
                args = [
                    change.revision,
                    change.status.value,
                    TTL_SECONDS,
                    CHANNEL,
                    message,
                    str(change.network_id),
                ]
                # One EVALSHA each, not a pipeline: a pipeline of scripts first asks Redis
                # whether they are loaded (SCRIPT EXISTS), a second round trip for the one
                # change a commit usually announces.
                self._publish(keys=[key, _gone(change.tenant_id)], args=args)
        except redis.RedisError as exc:
            # The record has the change; readers fall back to it while Redis is away, and
            # these are announced with the next change this process makes.
            self._pending.extend(batch)
            log.warning("revisions.publish_failed", error=str(exc), pending=len(self._pending))

    def close_network(self, tenant_id: str, network_id: UUID, *, now: float) -> None:
        """Announce nothing more of the network's tasks: it is being deleted."""
        gone = _gone(tenant_id)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zadd(gone, {str(network_id): now})
            pipe.zremrangebyscore(gone, "-inf", now - TTL_SECONDS)
            pipe.expire(gone, TTL_SECONDS)
            pipe.execute()
        except redis.RedisError as exc:
            raise RevisionsUnavailable(f"task revisions are unavailable: {exc}") from exc

    def reopen_network(self, tenant_id: str, network_id: UUID) -> None:
        """Undo close_network: the network's delete failed, and it lives on."""
        try:
            self._redis.zrem(_gone(tenant_id), str(network_id))
        except redis.RedisError as exc:
            raise RevisionsUnavailable(f"task revisions are unavailable: {exc}") from exc

    def close(self) -> None:
        """Stop this process's listener (the client is being closed)."""
        with self._lock:
            if self._listener is not None:
                self._listener.stop()
                self._listener = None

    def _listening(self) -> _Listener:
        # Started on first use, so that each forked process runs its own.
        with self._lock:
            if self._listener is None:
                self._listener = _Listener(self._redis)
                self._listener.start()
            return self._listener


class _Listener:
    """Reads the channel in a thread of its own (a greenlet under gevent) and wakes waiters."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._waiters: dict[tuple[str, str], set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="mesh-revisions", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake_all()

    @contextlib.contextmanager
    def watching(self, tenant_id: str, task_id: UUID) -> Iterator[threading.Event]:
        key, woken = (tenant_id, str(task_id)), threading.Event()
        with self._lock:
            self._waiters.setdefault(key, set()).add(woken)
        try:
            yield woken
        finally:
            with self._lock:
                waiting = self._waiters.get(key, set())
                waiting.discard(woken)
                if not waiting:
                    self._waiters.pop(key, None)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                backoff = 0.1
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._wake(message["data"])
            # OSError and the rest: the client's connections closed under the reader.
            except (redis.RedisError, OSError, TypeError, ValueError) as exc:
                if self._stopping.is_set():
                    break
                log.warning("revisions.listener_lost", error=str(exc))
                self._wake_all()  # each looks again, and finds Redis away or a change
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                pubsub.reset()

    def _wake(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        task_id, _revision, _status, tenant_id = text.split(" ", 3)
        with self._lock:
            waiting = list(self._waiters.get((tenant_id, task_id), ()))
        for woken in waiting:
            woken.set()

    def _wake_all(self) -> None:
        with self._lock:
            waiting = [w for ws in self._waiters.values() for w in ws]
        for woken in waiting:
            woken.set()


def _gone(tenant_id: str) -> str:
    return f"mesh:{tenant_id}:gone"


def _key(tenant_id: str, network_id: UUID, task_id: UUID) -> str:
    return f"mesh:{tenant_id}:mem:{network_id}:rev:{task_id}"


def _parse(raw: bytes | str) -> Revision:
    text = raw.decode() if isinstance(raw, bytes) else raw
    revision, status = text.split(" ", 1)
    return Revision(int(revision), TaskStatus(status))
