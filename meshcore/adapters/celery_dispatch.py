"""Dispatching work to the Celery queues. Routing to queues is the Celery app's (meshworkers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from celery import Celery, chord

from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.task import Priority
from meshcore.ports import TaskRef

# On the Redis transport 0 is the highest priority (unlike AMQP); steps are 0, 3, 6, 9.
MESSAGE_PRIORITY = {Priority.HIGH: 0, Priority.NORMAL: 3, Priority.LOW: 6}


class CeleryDispatcher:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def coordinate(self, ref: TaskRef) -> None:
        self._app.send_task("mesh.coordinate", args=_ids(ref), priority=_priority(ref))

    def run_wave(
        self, ref: TaskRef, iteration: int, wave: int, subtasks: Sequence[PlannedSubtask]
    ) -> None:
        """A chord: the wave's steps on their agents' queues, then `collect` after them."""
        header = [
            self._app.signature(
                "mesh.run_agent",
                args=(*_ids(ref), iteration, s.key),
                kwargs={"agent_type": s.agent_type.value},
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
        chord(header, app=self._app)(callback)

    def review(self, ref: TaskRef, iteration: int) -> None:
        self._app.send_task("mesh.review", args=(*_ids(ref), iteration), priority=_priority(ref))

    def expire(self, ref: TaskRef, at: datetime) -> None:
        self._app.send_task("mesh.expire", args=_ids(ref), eta=at, priority=_priority(ref))


def _ids(ref: TaskRef) -> tuple[str, str]:
    return ref.tenant_id, str(ref.task_id)


def _priority(ref: TaskRef) -> int:
    return MESSAGE_PRIORITY[ref.priority]
