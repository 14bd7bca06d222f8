"""A worker's metrics endpoint, traces and log context, wired to Celery's signals.

`mesh worker` gives the worker's processes one metrics directory before anything imports
prometheus_client; the main process serves /metrics on MESH_METRICS_PORT from it, so prefork
children and thread pools are counted alike.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_shutdown

from meshcore.domain.agent_types import COORDINATOR
from meshcore.settings import Settings
from meshcore.telemetry import exposition, tracing

log = structlog.get_logger(__name__)


def install(app: Celery) -> None:
    """Connect the signals for this app's worker (call it once, before the worker starts)."""

    @worker_init.connect(weak=False)
    def _started(**_: Any) -> None:
        _serve_metrics(app.conf.mesh_settings)
        if tracing.configure("mesh-worker"):
            trace_celery()


def trace_celery() -> None:
    """Carry the trace across every message this process publishes and runs."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    # The instrumentation finds a message's task by name in the default app; without the
    # shared tasks registered there, it leaves each publish span open.
    import meshworkers.tasks  # noqa: F401

    CeleryInstrumentor().instrument()


@worker_process_shutdown.connect(weak=False)
def _child_stopped(**_: Any) -> None:
    exposition.process_exited(os.getpid())


@task_prerun.connect(weak=False)
def _bind_log_context(task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    """Every line a task logs names the task, the agent and the queue it came from."""
    structlog.contextvars.clear_contextvars()
    request = getattr(task, "request", None)
    queue = ((request and request.delivery_info) or {}).get("routing_key")
    agent = (kwargs or {}).get("agent_type") or _agent_of(queue)
    task_id = args[1] if args and len(args) > 1 else None
    structlog.contextvars.bind_contextvars(task_id=task_id, agent=agent, queue=queue)


@task_postrun.connect(weak=False)
def _clear_log_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


def _agent_of(queue: str | None) -> str | None:
    if queue == "coordinator":
        return COORDINATOR
    if queue and queue.startswith("agent."):
        return queue.removeprefix("agent.")
    return None


def _serve_metrics(settings: Settings) -> None:
    port = settings.metrics_port
    if not port:
        return
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    try:
        exposition.serve(port, token=token)
    except OSError as exc:
        # Another worker on this host has the port; the steps matter more than the metrics.
        log.warning("metrics.not_served", port=port, error=str(exc))
    else:
        log.info("metrics.serving", port=port, needs_token=token is not None)
