"""The Celery app: queues, routing and the delivery settings the durability rule needs."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery, bootsteps
from celery.signals import worker_init
from kombu import Queue

from meshcore import bootstrap
from meshcore.adapters.celery_dispatch import PRIORITY_STEPS
from meshcore.adapters.redis_tls import plain_url, ssl_options
from meshcore.adapters.redis_transport import SOCKET_TRANSPORT, TCP_TRANSPORT
from meshcore.adapters.redis_urls import kombu_url
from meshcore.domain.agent_types import CRITIC, own_queue
from meshcore.domain.errors import Unavailable
from meshcore.settings import Settings

log = structlog.get_logger(__name__)

# Webhook deliveries have a queue of their own: a receiver that keeps failing never holds
# back a task's work.
WEBHOOKS_QUEUE = "webhooks"
QUEUES = (*bootstrap.task_queues(), WEBHOOKS_QUEUE)
# The critic's review runs on its own queue like any agent step.
ROUTES = {
    "mesh.coordinate": "coordinator",
    "mesh.collect": "coordinator",
    "mesh.expire": "coordinator",
    "mesh.sweep": "coordinator",
    "mesh.review": own_queue(CRITIC),
    "mesh.deliver_webhook": WEBHOOKS_QUEUE,
}


def route(
    name: str, args: Any, kwargs: dict[str, Any], options: Any, task: Any = None, **_: Any
) -> dict[str, str] | None:
    """mesh.run_agent goes to the queue its plan gave it (a message sent before queues were
    planned: its type's own); the rest to their fixed queues."""
    if name == "mesh.run_agent":
        return {"queue": kwargs.get("queue") or own_queue(kwargs["agent_type"])}
    if name in ROUTES:
        return {"queue": ROUTES[name]}
    return None


def create_celery(settings: Settings) -> Celery:
    if settings.redis_url is None:
        raise ValueError("MESH_REDIS_URL is not set; `mesh serve` starts an embedded Redis")
    redis_url = plain_url(settings.redis_url)
    broker, broker_transport = _broker(redis_url)
    app = Celery("mesh", broker=broker, backend=kombu_url(redis_url), set_as_current=False)
    transport = {
        # Longer than the longest step, else Redis hands a running step to a second worker.
        "visibility_timeout": settings.visibility_timeout_seconds,
        "priority_steps": list(PRIORITY_STEPS),
        "queue_order_strategy": "priority",
        # A Redis that is away must fail a publish at once (the submit is answered within
        # 2 s, the sweeper sends it later), and one that hangs must not hold it forever.
        "socket_connect_timeout": 0.5,
        "socket_timeout": 5,
    }
    app.conf.update(
        task_queues=[Queue(q) for q in QUEUES],
        task_default_queue="coordinator",
        task_routes=(route,),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=24 * 3600,
        broker_transport_options=transport,
        result_backend_transport_options={
            "visibility_timeout": settings.visibility_timeout_seconds
        },
        broker_transport=broker_transport,
        # rediss://: the broker and the result backend verify Redis's certificate as every
        # other client does (meshcore.adapters.redis_tls); kombu alone would verify nothing.
        broker_use_ssl=ssl_options(settings) or False,
        redis_backend_use_ssl=ssl_options(settings) or None,
        broker_connection_retry_on_startup=True,
        # A worker outlives any Redis outage: it reconnects for as long as it takes.
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        # Results are kept only for a chord's header (the steps it counts); no other result
        # is read, so none is stored, and no process subscribes to one.
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
    )
    # Stalled tasks are found by a sweep that beat sends; a lost sweep is replaced by the next.
    app.conf.beat_schedule = {
        "sweep": {
            "task": "mesh.sweep",
            "schedule": settings.sweep_interval_seconds,
            "options": {"expires": settings.sweep_interval_seconds},
        }
    }
    # A message published while Redis is away fails fast; the record keeps what matters.
    app.conf.task_publish_retry_policy = {
        "max_retries": 1,
        "interval_start": 0.1,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }
    app.conf.mesh_settings = settings
    app.conf.imports = ("meshworkers.tasks",)
    app.steps["worker"].add(EpochStep)
    return app


@worker_init.connect(weak=False)
def _import_the_model_gateway(sender: Any = None, **_: Any) -> None:
    # litellm takes seconds of CPU to import. Paid here, before the worker consumes, it no
    # longer holds back the first message each worker handles (a task's expiry included).
    from meshcore.adapters.litellm_models import warm_up

    settings = getattr(getattr(sender, "app", None), "conf", {}).get("mesh_settings")
    warm_up(settings.model_chain if settings is not None else ())


class EpochStep(bootsteps.StartStopStep):
    """A starting worker begins the fleet's Redis epoch if there is none, so that the sweeper
    takes a missing epoch for lost data, not for a fleet that has just started."""

    def start(self, parent: Any) -> None:
        try:
            bootstrap.start_epoch(parent.app.conf.mesh_settings)
        except Unavailable as exc:
            log.warning("epoch.not_started", error=str(exc))  # the first sweep begins it


def _broker(redis_url: str) -> tuple[str, str]:
    """The broker URL and the transport that reads it (see meshcore.adapters.redis_transport)."""
    if redis_url.startswith("unix://"):
        return "socket://" + redis_url.removeprefix("unix://"), SOCKET_TRANSPORT
    return redis_url, TCP_TRANSPORT
