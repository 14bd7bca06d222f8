"""Submitting tasks, reading them back, and starting the ones held for later."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import structlog

from meshcore.domain.errors import Conflict, NotFound, Unavailable
from meshcore.domain.network import AgentType
from meshcore.domain.plan import parse_plan, validate_plan
from meshcore.domain.quotas import DEFAULT_QUOTAS, Quota, Quotas
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.ports import Clock, Dispatcher, Page, TaskRef, UnitOfWorkFactory
from meshcore.services.quotas import reserve
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)

# The heartbeat of a task whose first message never reached the broker.
UNDELIVERED = datetime(1970, 1, 1, tzinfo=UTC)


class TaskService:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        dispatcher: Dispatcher,
        clock: Clock,
        quotas: Quotas = DEFAULT_QUOTAS,
    ) -> None:
        self._tenant_id, self._uow, self._dispatcher, self._clock = (
            tenant_id,
            uow,
            dispatcher,
            clock,
        )
        self._quotas = quotas

    def submit(
        self,
        network_id: UUID,
        *,
        description: str,
        context: dict[str, object],
        priority: Priority,
        auto_process: bool = True,
        plan: list[dict[str, object]] | None = None,
    ) -> Task:
        """Record a task, then (unless held) enqueue it; the row commits before the enqueue."""
        with self._uow(self._tenant_id) as uow:
            network = uow.networks.get(network_id)
            if network.agent_of(AgentType.COORDINATOR) is None:
                raise Conflict(f"network {network_id} has no coordinator agent to plan tasks")
            planned = None
            if plan is not None:
                planned = parse_plan(plan)
                validate_plan(planned, network.agent_types())
            task = Task.create(
                tenant_id=self._tenant_id,
                network_id=network_id,
                description=description,
                context=context,
                priority=priority,
                timeout_seconds=network.config.timeout_seconds,
                now=self._clock.now(),
                plan=planned,
                is_held=not auto_process,
            )
            reserve(uow, self._quotas, Quota.TASKS_IN_FLIGHT)
            uow.tasks.add(task)
            uow.commit()
        metrics.tasks_submitted.inc()
        log.info("task.submitted", task_id=str(task.id), network_id=str(network_id))
        if auto_process:
            self._enqueue(task)
        return task

    def process(self, network_id: UUID, task_id: UUID) -> Task:
        """Start a task that was submitted with auto_process false."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
            # Locked until the commit: of two concurrent calls, the second sees the release.
            task = uow.tasks.locked_in_network(task_id, network_id=network_id)
            task.release(now=self._clock.now())
            uow.tasks.save(task)
            uow.commit()
        self._enqueue(task)
        log.info("task.process_requested", task_id=str(task_id))
        return self.get(network_id, task_id)

    def get(self, network_id: UUID, task_id: UUID) -> Task:
        """A task with its history and every iteration's subtasks, oldest iteration first."""
        with self._uow(self._tenant_id) as uow:
            try:
                task = uow.tasks.in_network(task_id, network_id=network_id)
            except NotFound:
                uow.networks.require(network_id)  # a missing network is reported as such
                raise
            task.history = uow.tasks.history(task_id)
            task.subtasks = uow.tasks.every_subtask(task_id) if task.iteration else []
            return task

    def list(
        self, network_id: UUID, page: Page, status: TaskStatus | None = None
    ) -> tuple[list[Task], int]:
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
            return uow.tasks.list(network_id, page, status)

    def _enqueue(self, task: Task) -> None:
        try:
            self._dispatcher.coordinate(self._ref(task), new=True)
        except Unavailable as exc:
            # The task is recorded, so it is accepted: the sweeper starts it once the broker
            # is back. Refusing now would make the client submit it twice.
            log.warning("task.enqueue_deferred", task_id=str(task.id), error=str(exc))
            self._mark_undelivered(task)

    def _mark_undelivered(self, task: Task) -> None:
        # A heartbeat from long ago makes the first sweep after the broker returns start the
        # task, instead of waiting out the stall timeout (a broker that kept its data says
        # nothing through the epoch). If the record is away too, the stall timeout still will.
        try:
            with self._uow(self._tenant_id) as uow:
                uow.tasks.touch(task.id, UNDELIVERED)
                uow.commit()
        except Unavailable as exc:
            log.warning("task.undelivered_not_marked", task_id=str(task.id), error=str(exc))

    def _ref(self, task: Task) -> TaskRef:
        return TaskRef(self._tenant_id, task.id, task.priority)
