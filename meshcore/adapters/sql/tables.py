"""The schema of the record. Alembic migrations create it; this is what the code reads."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# JSONB on Postgres, JSON text on SQLite.
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def _serial_id() -> sa.Column:
    # SQLite autoincrements only an INTEGER primary key.
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", sa.String(64), nullable=False)


networks = sa.Table(
    "networks",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    _tenant(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("config", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Sealed: the secret its webhook deliveries are signed under.
    sa.Column("webhook_secret", sa.Text, nullable=True),
    sa.Index("ix_networks_tenant_created", "tenant_id", "created_at"),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    _tenant(),
    sa.Column(
        "network_id", sa.Uuid, sa.ForeignKey("networks.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False, default=0),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("model", Json, nullable=False),
    sa.Column("capabilities", Json, nullable=False),
    sa.Column("is_disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("calls", sa.Integer, nullable=False, default=0),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("latency_ms_total", sa.Float, nullable=False, default=0.0),
    sa.Column("input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_usd", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_agents_network", "tenant_id", "network_id"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    _tenant(),
    sa.Column(
        "network_id", sa.Uuid, sa.ForeignKey("networks.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("context", Json, nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("plan", Json, nullable=True),
    sa.Column("iteration", sa.Integer, nullable=False, default=0),
    sa.Column("wave", sa.Integer, nullable=False, default=0),
    sa.Column("result", Json, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_usd", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("deadline_at", Timestamp, nullable=False),
    # Moved on every transition and step start; the sweeper looks for tasks where it stopped.
    sa.Column("heartbeat_at", Timestamp, nullable=True),
    sa.Column("held", sa.Boolean, nullable=False, default=False),
    # Moves on every change a client can see: the number of the task's latest event.
    sa.Column("revision", sa.Integer, nullable=False, default=0),
    # The webhook its events go to ({url, events}): its own, else its network's at submission.
    sa.Column("webhook", Json, nullable=True),
    sa.Index("ix_tasks_network_created", "tenant_id", "network_id", "created_at"),
    sa.Index("ix_tasks_heartbeat", "status", "heartbeat_at"),
    sa.Index("ix_tasks_status", "tenant_id", "status"),
)

subtasks = sa.Table(
    "subtasks",
    metadata,
    sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("iteration", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    _tenant(),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("agent_type", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("depends_on", Json, nullable=False),
    sa.Column("agent_version", sa.Integer, nullable=False, default=1),
    sa.Column("queue", sa.String(64), nullable=True),  # None: planned before queues were data
)

# The step log: one row per (task, iteration, key); the primary key makes the first write win.
steps = sa.Table(
    "steps",
    metadata,
    sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("iteration", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    _tenant(),
    sa.Column("agent_type", sa.String(32), nullable=False),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("output", sa.Text, nullable=False),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cost_usd", sa.Float, nullable=False, default=0.0),
    sa.Column("latency_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("memory_read", Json, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("worker", sa.String(200), nullable=True),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("traceparent", sa.String(64), nullable=True),
    sa.Column("agent_version", sa.Integer, nullable=False, default=1),
)

task_events = sa.Table(
    "task_events",
    metadata,
    _serial_id(),
    _tenant(),
    sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("agent", sa.String(32), nullable=True),
    sa.Column("queue", sa.String(64), nullable=True),
    sa.Column("detail", Json, nullable=False),
    # The event's number within its task, 1, 2, 3...: what SSE ids and Last-Event-ID name.
    sa.Column("seq", sa.Integer, nullable=True),
    sa.Index("ix_task_events_task", "task_id", "id"),
    sa.Index("ux_task_events_seq", "task_id", "seq", unique=True),
)

# One row per event of a task its webhook wants, inserted with the event (so none is lost);
# a worker leases it for an attempt, and the sweeper finds the ones whose message was lost.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    _tenant(),
    sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("network_id", sa.Uuid, nullable=False),
    sa.Column("event_seq", sa.Integer, nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("leased_until", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("task_id", "event_seq", name="uq_webhook_deliveries_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# The context items that last only as long as their task (domain/lifetimes.py).
TASK_CONTEXT = "type = 'context' AND task_id IS NOT NULL AND promoted_at IS NULL"

memory_items = sa.Table(
    "memory_items",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    _tenant(),
    sa.Column(
        "network_id", sa.Uuid, sa.ForeignKey("networks.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("task_id", sa.Uuid, nullable=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # Keyed hashes (adapters/sql/restatements.py): of the normalised content, for the types
    # that merge, unique so that a restatement finds the item it restates; and of a
    # decision's subject, so that a contradiction is found without reading the network.
    # NULL for the other types, and for rows written before migration 0016.
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Column("subject", sa.String(64), nullable=True),
    # Its lifetime (domain/lifetimes.py): when its type's time to live ends it, and when it
    # was promoted to last. The sweep finds what expired by the index on expires_at.
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("promoted_at", Timestamp, nullable=True),
    sa.Index("ix_memory_network_created", "tenant_id", "network_id", "created_at"),
    sa.Index("ix_memory_task", "task_id"),
    sa.Index(
        "uq_memory_fingerprint", "tenant_id", "network_id", "type", "fingerprint", unique=True
    ),
    sa.Index("ix_memory_subject", "tenant_id", "network_id", "subject"),
    sa.Index("ix_memory_expires", "expires_at"),
    # The context items that end with their task: the sweep reads them, not the whole table.
    sa.Index(
        "ix_memory_task_context",
        "task_id",
        postgresql_where=sa.text(TASK_CONTEXT),
        sqlite_where=sa.text(TASK_CONTEXT),
    ),
)

# How many items each network's memory holds, kept by the writers, so that a write learns
# whether it took the network past its bound without counting the network's items.
memory_counts = sa.Table(
    "memory_counts",
    metadata,
    sa.Column(
        "network_id", sa.Uuid, sa.ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True
    ),
    _tenant(),
    sa.Column("item_count", sa.BigInteger, nullable=False),
)

# Links between memory items: two decisions that contradict each other, one row each way, so
# an item's links are read by its own id.
memory_links = sa.Table(
    "memory_links",
    metadata,
    sa.Column(
        "item_id", sa.Uuid, sa.ForeignKey("memory_items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "other_id", sa.Uuid, sa.ForeignKey("memory_items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("kind", sa.String(16), primary_key=True),
    _tenant(),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_memory_links_other", "other_id"),
)

# A step's output that restated an item already in memory: the item holds it, and a later
# subtask that depends on the step finds it here (its own task's items would not hold it).
memory_restatements = sa.Table(
    "memory_restatements",
    metadata,
    sa.Column("task_id", sa.Uuid, primary_key=True),
    sa.Column("iteration", sa.Integer, primary_key=True),
    sa.Column("subtask", sa.String(64), primary_key=True),
    _tenant(),
    sa.Column(
        "item_id", sa.Uuid, sa.ForeignKey("memory_items.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("source_agent", sa.String(32), nullable=True),
    sa.Column("agent_id", sa.Uuid, nullable=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_memory_restatements_item", "item_id"),
)

# How often each step was begun, and when last: a lease against concurrent duplicates and a
# bound on steps that keep killing their worker (Celery counts no redeliveries).
step_attempts = sa.Table(
    "step_attempts",
    metadata,
    sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("iteration", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    _tenant(),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
)

# API keys: the public id, the tenant and scopes, and an HMAC of the secret (never the secret).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    _tenant(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Index("ix_api_keys_tenant_created", "tenant_id", "created_at"),
)

# The audit trail: who (key, tenant) did what (method, route, resource) with which outcome,
# and when. Append-only, and no content: it outlives a tenant's erasure. A request refused
# before a key was verified has no tenant (NULL, which equals no tenant id, so no tenant can
# read it); a path that matches no route has no route (its text is the caller's, not ours).
audit_events = sa.Table(
    "audit_events",
    metadata,
    _serial_id(),
    sa.Column("tenant_id", sa.String(64), nullable=True),
    sa.Column("key_id", sa.String(16), nullable=True),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("route", sa.String(200), nullable=True),
    sa.Column("resource_id", sa.String(64), nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_audit_events_tenant_id", "tenant_id", "id"),
)

# Idempotency keys of creates: the first create under a key records what it made, in its own
# transaction; a concurrent one with the same key waits on the primary key until it commits.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("created", sa.String(16), nullable=False),
    sa.Column("resource_id", sa.Uuid, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_idempotency_keys_created", "created_at"),
)

# The tenants' own agent types, one row per version; a delete adds a version that is deleted,
# so a step that ran with an older version can still be explained.
agent_types = sa.Table(
    "agent_types",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", Json, nullable=False),
    sa.Column("is_deleted", sa.Boolean, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# A step's tool calls, one row per call: `started` is committed before the call goes out and
# `done` (or `failed`) right after it returns, so a redelivered step replays what was done
# and finds what may have run (a row left `started`). Arguments and result are sealed.
tool_calls = sa.Table(
    "tool_calls",
    metadata,
    sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("iteration", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    _tenant(),
    sa.Column("server", sa.String(64), nullable=False),
    sa.Column("tool", sa.String(128), nullable=False),
    sa.Column("arguments_hash", sa.String(64), nullable=False),
    sa.Column("arguments", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("is_error", sa.Boolean, nullable=False, default=False),
    sa.Column("latency_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=True),
)

# Every change to a memory item's confidence, with its reason: the item's history.
memory_confidence_changes = sa.Table(
    "memory_confidence_changes",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    _tenant(),
    sa.Column(
        "item_id", sa.Uuid, sa.ForeignKey("memory_items.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("task_id", sa.Uuid, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("before", sa.Float, nullable=False),
    sa.Column("after", sa.Float, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_confidence_changes_item", "item_id", "at"),
)

# A client's rating of a finished task: one per task, changeable; the comment is sealed.
task_ratings = sa.Table(
    "task_ratings",
    metadata,
    sa.Column("task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    _tenant(),
    sa.Column("score", sa.SmallInteger, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)
