"""What one tenant has stored: its rows in Postgres (API keys included), its keys in Redis,
its queued messages."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from redis import Redis

# Every table that carries a tenant's data; the children of a network go with it by cascade.
TABLES = (
    "networks",
    "agents",
    "tasks",
    "subtasks",
    "steps",
    "task_events",
    "memory_items",
    "api_keys",
    "idempotency_keys",
    "webhook_deliveries",
    "agent_types",
    "task_ratings",
)
# The Celery queues on the broker (`coordinator`, `agent.<type>`), one list per priority.
QUEUE_PATTERNS = ("coordinator*", "agent.*")
PRIORITY_SEPARATOR = b"\x06\x16"


class Record:
    def __init__(self, engine: sa.Engine, redis: Redis, tenant: str) -> None:
        self._engine, self._redis, self.tenant = engine, redis, tenant

    def snapshot(self) -> dict[str, object]:
        """Everything the tenant has stored, in an order that compares equal if unchanged."""
        state: dict[str, object] = {}
        with self._engine.connect() as db:
            for table in TABLES:
                rows = db.execute(
                    sa.text(f"SELECT * FROM {table} WHERE tenant_id = :t ORDER BY 1, 2, 3"),
                    {"t": self.tenant},
                )
                state[table] = [tuple(row) for row in rows]
        keys = sorted(self._redis.scan_iter(match=f"mesh:{self.tenant}:*"))
        state["redis"] = {key: self._redis.dump(key) for key in keys}
        state["queued"] = self.queued()
        return state

    def count(self, table: str, **where: object) -> int:
        """Rows of the tenant in `table` whose columns equal `where`."""
        clauses = "".join(f" AND {column} = :{column}" for column in where)
        with self._engine.connect() as db:
            return db.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t{clauses}"),
                {"t": self.tenant, **where},
            ).scalar_one()

    def set_task_status(self, task_id: str, status: str) -> None:
        """Move a task as a worker would have; no worker runs in these tests."""
        with self._engine.begin() as db:
            db.execute(
                sa.text("UPDATE tasks SET status = :s WHERE id = :id AND tenant_id = :t"),
                {"s": status, "id": task_id, "t": self.tenant},
            )

    def memory_keys(self, network_id: str) -> list[bytes]:
        """The network's keys in the shared memory view."""
        return sorted(self._redis.scan_iter(match=f"mesh:{self.tenant}:mem:{network_id}:*"))

    def queued(self) -> list[tuple[str, bytes]]:
        """(queue, message) for each broker message that carries this tenant in its args."""
        return sorted(
            (queue, message)
            for queue, _key, message in queued_messages(self._redis)
            if self.tenant.encode() in message
        )

    def purge(self) -> None:
        """Remove all the tenant stored: rows, API keys, memory keys and queued messages."""
        with self._engine.begin() as db:
            for table in ("networks", "api_keys", "idempotency_keys", "agent_types"):
                db.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": self.tenant})
        keys = list(self._redis.scan_iter(match=f"mesh:{self.tenant}:*"))
        if keys:
            self._redis.unlink(*keys)
        purge_queued(self._redis, self.tenant)


def queued_messages(redis: Redis) -> Iterator[tuple[str, bytes, bytes]]:
    """(queue, list key, message) for every message waiting on the Celery queues."""
    for pattern in QUEUE_PATTERNS:
        for key in redis.scan_iter(match=pattern):
            if redis.type(key) == b"list":
                queue = key.split(PRIORITY_SEPARATOR)[0].decode()
                for message in redis.lrange(key, 0, -1):
                    yield queue, key, message


def purge_queued(redis: Redis, marker: str) -> None:
    """Remove the queued messages whose text holds `marker`, and only those."""
    for _queue, key, message in list(queued_messages(redis)):
        if marker.encode() in message:
            redis.lrem(key, 0, message)
