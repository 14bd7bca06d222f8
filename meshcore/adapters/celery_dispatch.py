"""Dispatching work to the Celery queues. Routing to queues is the Celery app's (meshworkers)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import kombu.exceptions
import redis
from celery import Celery, chord
from celery.signals import before_task_publish

from meshcore.adapters.redis_gauges import SENT_AT_HEADER
from meshcore.domain.errors import Unavailable
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.task import Priority
from meshcore.ports import DeliveryRef, TaskRef

# On the Redis transport 0 is the highest priority (unlike AMQP); steps are 0, 3, 6, 9.
# A task's first message goes one step below the rest of its work, so that under a burst the
# tasks already started finish first instead of every task waiting behind every plan.
PRIORITY_STEPS = (0, 3, 6, 9)
MESSAGE_PRIORITY = {Priority.HIGH: 0, Priority.NORMAL: 3, Priority.LOW: 6}
NEW_TASK_PRIORITY = {Priority.HIGH: 3, Priority.NORMAL: 6, Priority.LOW: 9}


class DispatchUnavailable(Unavailable):
    """The broker (Redis) did not take the message."""


@contextmanager
def _broker() -> Iterator[None]:
    try:
        yield
    except (kombu.exceptions.OperationalError, redis.RedisError, OSError) as exc:
        raise DispatchUnavailable(f"the broker is unavailable: {type(exc).__name__}") from exc


class CeleryDispatcher:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def coordinate(self, ref: TaskRef, *, new: bool = False) -> None:
        priority = NEW_TASK_PRIORITY[ref.priority] if new else _priority(ref)
        self._send("mesh.coordinate", ref, priority=priority)

    def run_wave(
        self, ref: TaskRef, iteration: int, wave: int, subtasks: Sequence[PlannedSubtask]
    ) -> None:
        """A chord: the wave's steps on their agents' queues, then `collect` after them."""
        header = [
            self._app.signature(
                "mesh.run_agent",
                args=(*_ids(ref), iteration, s.key),
                kwargs={"agent_type": str(s.agent_type), "queue": s.queue},
                priority=_priority(ref),
            )
            for s in subtasks
        ]
        callback = self._app.signature(
            "mesh.collect",
            args=(*_ids(ref), iteration, wave),
            priority=_priority(ref),
            immutable=True,
        )
        with _broker():
            chord(header, app=self._app)(callback)

    def collect(self, ref: TaskRef, iteration: int, wave: int) -> None:
        """Fan-in without a chord, for a wave whose steps are all recorded already."""
        self._send("mesh.collect", ref, iteration, wave)

    def review(self, ref: TaskRef, iteration: int) -> None:
        self._send("mesh.review", ref, iteration)

    def expire(self, ref: TaskRef, at: datetime) -> None:
        self._send("mesh.expire", ref, eta=at)

    def deliver_webhook(self, ref: DeliveryRef, *, countdown: float = 0.0) -> None:
        with _broker():
            self._app.send_task(
                "mesh.deliver_webhook",
                args=(ref.tenant_id, str(ref.delivery_id)),
                countdown=countdown or None,
                ignore_result=True,
            )

    def _send(
        self,
        name: str,
        ref: TaskRef,
        *args: int,
        eta: datetime | None = None,
        priority: int | None = None,
    ) -> None:
        with _broker():
            # ignore_result: nothing reads these results, and a process that waits for one
            # subscribes to it in Redis, which Celery cannot recover from once Redis is away
            # ("Retry limit exceeded ... The Celery application must be restarted.").
            self._app.send_task(
                name,
                args=(*_ids(ref), *args),
                eta=eta,
                priority=_priority(ref) if priority is None else priority,
                ignore_result=True,
            )


def _ids(ref: TaskRef) -> tuple[str, str]:
    return ref.tenant_id, str(ref.task_id)


def _priority(ref: TaskRef) -> int:
    return MESSAGE_PRIORITY[ref.priority]


@before_task_publish.connect(weak=False)
def _stamp_sent_at(headers: dict[str, object] | None = None, **_: object) -> None:
    """Every message carries when it was sent, for the queue-age gauge."""
    if headers is not None:
        headers[SENT_AT_HEADER] = time.time()
