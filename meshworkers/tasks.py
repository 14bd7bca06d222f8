"""Celery tasks: unpack ids, call one service method. Every one is safe to deliver twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import structlog
from celery import Celery, Task, shared_task

from meshcore import bootstrap
from meshcore.bootstrap import Mesh, Services
from meshcore.domain.errors import NotFound, Unavailable
from meshcore.ports import Delivery, DeliveryRef

log = structlog.get_logger(__name__)

_meshes: dict[int, Mesh] = {}
_lock = threading.Lock()


def mesh_of(app: Celery) -> Mesh:
    """This process's Mesh, built on first use so that each forked child builds its own."""
    with _lock:
        if id(app) not in _meshes:
            _meshes[id(app)] = bootstrap.build(app.conf.mesh_settings, app)
        return _meshes[id(app)]


def services(app: Celery, tenant_id: str) -> Services:
    return mesh_of(app).tenant(tenant_id)


@contextmanager
def owned(app: Celery, tenant_id: str, task_id: str) -> Iterator[None]:
    """The body of a message about a task; one the message's tenant does not own does nothing.

    The tenant a message carries is checked against the record by every query (each filters
    by it, and row-level security backs the filters up), so another tenant's task, or one
    erased since the message was sent, is not found, and nothing was read or written. The
    second, fleet-wide look only tells the two apart for the log.
    """
    try:
        yield
    except NotFound as exc:
        owner = mesh_of(app).uow.owner_of(UUID(task_id))
        if owner is None:
            log.info("task.gone", task_id=task_id, tenant=tenant_id, error=str(exc))
        elif owner != tenant_id:
            log.warning("task.tenant_mismatch", task_id=task_id, tenant=tenant_id)
        else:
            raise


def delivery_of(task: Task) -> Delivery:
    info = task.request.delivery_info or {}
    return Delivery(queue=info.get("routing_key"), worker=task.request.hostname)


# A database or broker that is briefly away (or a deadlock) is worth another try: every task
# is idempotent. Model errors never reach here (the gateway handles them), so Celery retries
# no model call.
_DELIVERY = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (Unavailable,),
    "retry_backoff": 0.5,
    "retry_jitter": True,
    "max_retries": 8,
}


# Only a chord's header needs results in the backend (they count its steps); the other tasks'
# results would be a Redis write and a publish per message that nothing reads.
_NO_RESULT = {**_DELIVERY, "ignore_result": True}


@shared_task(name="mesh.coordinate", **_NO_RESULT)
def coordinate(self: Task, tenant_id: str, task_id: str) -> None:
    with owned(self.app, tenant_id, task_id):
        services(self.app, tenant_id).coordination.coordinate(UUID(task_id), delivery_of(self))


# The one task whose result is stored (task_ignore_result is on for the rest): a chord's
# header counts its steps' results before it sends `collect`.
@shared_task(name="mesh.run_agent", **_DELIVERY, ignore_result=False)
def run_agent(
    self: Task,
    tenant_id: str,
    task_id: str,
    iteration: int,
    key: str,
    agent_type: str,
    queue: str = "",  # for routing (meshworkers.app.route); the step reads its plan
) -> str:
    with owned(self.app, tenant_id, task_id):
        return services(self.app, tenant_id).coordination.run_step(
            UUID(task_id), iteration, key, delivery_of(self)
        )
    return "skipped"


@shared_task(name="mesh.collect", **_NO_RESULT)
def collect(self: Task, tenant_id: str, task_id: str, iteration: int, wave: int) -> None:
    with owned(self.app, tenant_id, task_id):
        services(self.app, tenant_id).coordination.collect(
            UUID(task_id), iteration, wave, delivery_of(self)
        )


@shared_task(name="mesh.review", **_NO_RESULT)
def review(self: Task, tenant_id: str, task_id: str, iteration: int) -> None:
    with owned(self.app, tenant_id, task_id):
        services(self.app, tenant_id).coordination.review(
            UUID(task_id), iteration, delivery_of(self)
        )


@shared_task(name="mesh.expire", **_NO_RESULT)
def expire(self: Task, tenant_id: str, task_id: str) -> None:
    with owned(self.app, tenant_id, task_id):
        services(self.app, tenant_id).coordination.expire(UUID(task_id))


@shared_task(name="mesh.sweep", bind=True, ignore_result=True)
def sweep(self: Task) -> dict[str, int]:
    """Re-drive stalled tasks (sent by beat every MESH_SWEEP_INTERVAL_SECONDS)."""
    return mesh_of(self.app).sweeper().sweep()


@shared_task(name="mesh.deliver_webhook", **_NO_RESULT)
def deliver_webhook(self: Task, tenant_id: str, delivery_id: str) -> None:
    """One attempt at a webhook delivery; a duplicate finds it leased or settled."""
    try:
        mesh_of(self.app).webhooks.deliver(DeliveryRef(tenant_id, UUID(delivery_id)))
    except NotFound:
        log.info("webhook.task_gone", delivery_id=delivery_id, tenant=tenant_id)
