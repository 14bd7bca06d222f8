"""Every Prometheus metric Mesh exports, in one place (docs/operations.md explains each).

Names follow Prometheus conventions: base units (seconds, USD), `_total` on counters. Under
several processes (gunicorn workers, Celery's prefork children) the values live in
PROMETHEUS_MULTIPROC_DIR, which `meshcore.telemetry.exposition` sets up before this module is
imported; the gauges here therefore say how processes combine.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Histogram

# Agent steps and model calls range from milliseconds (offline) to minutes (long answers).
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5)
TASK_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

http_requests = Counter(
    "mesh_http_requests", "API requests answered", ["route", "method", "status"]
)
http_request_duration = Histogram(
    "mesh_http_request_duration_seconds", "API request duration", ["route", "method"],
    buckets=HTTP_BUCKETS,
)
# Refused before any work by an API process at its bound of requests (meshapi/shedding.py).
http_requests_shed = Counter("mesh_http_requests_shed", "API requests refused at once: busy")
tasks_submitted = Counter("mesh_tasks_submitted", "Tasks accepted")
tasks_finished = Counter("mesh_tasks", "Tasks that reached a final status", ["status"])
task_duration = Histogram(
    "mesh_task_duration_seconds", "Submit-to-final-status time", ["status"], buckets=TASK_BUCKETS
)
subtasks = Counter(
    "mesh_subtasks",
    "Agent steps started, succeeded, failed and retried",
    ["agent_type", "queue", "outcome"],
)
subtask_duration = Histogram(
    "mesh_subtask_duration_seconds", "Agent step duration", ["agent_type", "queue"],
    buckets=STEP_BUCKETS,
)
model_calls = Counter("mesh_model_calls", "Model calls by outcome", ["model", "outcome"])
model_call_duration = Histogram(
    "mesh_model_call_duration_seconds", "Model call duration", ["model"], buckets=STEP_BUCKETS
)
model_tokens = Counter("mesh_model_tokens", "Model tokens", ["model", "direction"])
model_cost = Counter("mesh_model_cost_usd", "Model cost from litellm's price map", ["model"])
model_fallbacks = Counter(
    "mesh_model_fallbacks", "Calls that moved past this model to the next in the chain", ["model"]
)
memory_operations = Counter("mesh_memory_operations", "Shared-memory operations", ["operation"])
# The seed's third quality figure, average memory confidence (> 0.8): _sum / _count.
memory_confidence = Histogram(
    "mesh_memory_confidence", "Confidence of each shared-memory item written, in [0, 1]",
    ["type"], buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
# Items memory let go, by why: "expired" (its type's time to live), "task_ended" (a context
# item of a task that ended), "bound" (its network was past its bound: the least valuable).
memory_evictions = Counter(
    "mesh_memory_evictions", "Shared-memory items removed at the end of their lifetime or "
    "to keep a network within its bound", ["reason"],
)
critic_score = Histogram(
    "mesh_critic_score", "The critic's scores, in [0, 1]",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
# The seed's user-satisfaction figure, average rating (> 4.5 of 5): _sum / _count. A changed
# rating counts again; a request that repeats the rating it has does not.
task_rating = Histogram(
    "mesh_task_rating", "Clients' ratings of their finished tasks, 1 to 5",
    buckets=(1, 2, 3, 4, 5),
)


def task_finished(status: str, created_at: datetime, now: datetime) -> None:
    tasks_finished.labels(status).inc()
    task_duration.labels(status).observe(max(0.0, (now - created_at).total_seconds()))
