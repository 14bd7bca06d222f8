"""Submitting tasks, reading them back (at once, or when they change), cancelling them,
starting the ones held for later, and approving or rejecting a plan that awaits approval."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog

from meshcore.domain.agent_types import COORDINATOR
from meshcore.domain.errors import Conflict, InvalidInput, NotFound, Overloaded, Unavailable
from meshcore.domain.idempotency import Created, IdempotencyKey
from meshcore.domain.plan import parse_plan, validate_plan
from meshcore.domain.quotas import DEFAULT_QUOTAS, Quota, Quotas
from meshcore.domain.task import (
    EventKind,
    HistoryEntry,
    Priority,
    Revision,
    Task,
    TaskChange,
    TaskStatus,
    TaskSummary,
)
from meshcore.domain.webhooks import Webhook
from meshcore.ports import (
    Clock,
    Dispatcher,
    Page,
    TaskRef,
    TaskRevisions,
    UnitOfWork,
    UnitOfWorkFactory,
    WebhookSender,
)
from meshcore.services.admission import Admission
from meshcore.services.agent_types import current_types
from meshcore.services.endings import end
from meshcore.services.idempotency import DEFAULT_LIFETIME, earlier_create
from meshcore.services.quotas import reserve
from meshcore.services.webhooks import refusal_of
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)

# The heartbeat of a task whose first message never reached the broker.
UNDELIVERED = datetime(1970, 1, 1, tzinfo=UTC)
# While Redis is away, a wait looks at the record this often.
RECORD_POLL_SECONDS = 1.0
# Events read from the record per query while a stream catches up.
EVENT_BATCH = 200


@dataclass(frozen=True)
class Unchanged:
    """The task is still at the revision the client named: nothing to send (HTTP 304)."""

    revision: int


class TaskService:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        dispatcher: Dispatcher,
        clock: Clock,
        revisions: TaskRevisions,
        quotas: Quotas = DEFAULT_QUOTAS,
        idempotency_lifetime: timedelta = DEFAULT_LIFETIME,
        webhooks: WebhookSender | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._admission = admission  # None: every task is taken (tools, tests)
        self._tenant_id, self._uow, self._dispatcher, self._clock = (
            tenant_id,
            uow,
            dispatcher,
            clock,
        )
        self._revisions, self._quotas = revisions, quotas
        self._idempotency_lifetime = idempotency_lifetime

    def submit(
        self,
        network_id: UUID,
        *,
        description: str,
        context: dict[str, object],
        priority: Priority,
        auto_process: bool = True,
        plan: list[dict[str, object]] | None = None,
        idempotency: IdempotencyKey | None = None,
        webhook: Webhook | None = None,
    ) -> Task:
        """Record a task, then (unless held) enqueue it; the row commits before the enqueue.

        A retry under the same idempotency key answers the task the first call made, and
        neither records nor enqueues anything. Its events go to `webhook`, else to its
        network's. Overloaded, before anything is stored, while the fleet's backlog is past
        its bound; a retry of a task already made is answered all the same."""
        overloaded = self._refusal()
        # A submit under a key may be the retry of a task already accepted, to be answered
        # with it: the key is looked up first, and the refusal raised only for a new task.
        if overloaded is not None and idempotency is None:
            raise overloaded
        if webhook is not None:
            webhook.check("webhook")
            if refused := refusal_of(self._webhooks, webhook.url):
                raise InvalidInput("webhook.url", refused)
        with self._uow(self._tenant_id) as uow:
            earlier = earlier_create(
                uow,
                idempotency,
                Created.TASK,
                now=self._clock.now(),
                lifetime=self._idempotency_lifetime,
            )
            if earlier is None:
                if overloaded is not None:
                    raise overloaded  # the rollback frees the key for the client's retry
                task = self._record(uow, network_id, description, context, priority,
                                    auto_process=auto_process, plan=plan,
                                    webhook=webhook)  # fmt: skip
                if idempotency is not None:
                    uow.idempotency.made(idempotency.key, task.id)
                uow.commit()
        if earlier is not None:
            # Read once the unit of work has ended: SQLite lets one connection write at a time.
            return self.get(network_id, earlier)
        metrics.tasks_submitted.inc()
        log.info("task.submitted", task_id=str(task.id), network_id=str(network_id))
        if auto_process:
            self._enqueue(task)
        return task

    def _record(
        self,
        uow: UnitOfWork,
        network_id: UUID,
        description: str,
        context: dict[str, object],
        priority: Priority,
        *,
        auto_process: bool,
        plan: list[dict[str, object]] | None,
        webhook: Webhook | None = None,
    ) -> Task:
        """A new task of the network, added to the unit of work (not committed); its events
        go to `webhook`, else to the network's."""
        network = uow.networks.get(network_id)
        if network.agent_of(COORDINATOR) is None:
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
            webhook=webhook or network.config.webhook,
        )
        reserve(uow, self._quotas, Quota.TASKS_IN_FLIGHT)
        uow.tasks.add(task)
        return task

    def process(self, network_id: UUID, task_id: UUID) -> Task:
        """Start a task that was submitted with auto_process false; Overloaded, the task
        left held, while the fleet's backlog is past its bound."""
        if (overloaded := self._refusal()) is not None:
            raise overloaded
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

    def _refusal(self) -> Overloaded | None:
        """Why no new work may be queued now, if that is so; asked before any write, so that
        a refusal costs no more than a cached read of the backlog."""
        return self._admission.refusal() if self._admission is not None else None

    def get(self, network_id: UUID, task_id: UUID) -> Task:
        """A task with its history and every iteration's subtasks, oldest iteration first."""
        with self._uow(self._tenant_id) as uow:
            with _missing_network_named(uow, network_id):
                task = uow.tasks.in_network(task_id, network_id=network_id)
            task.history = uow.tasks.history(task_id)
            task.subtasks = uow.tasks.every_subtask(task_id) if task.iteration else []
            return task

    def summary(self, network_id: UUID, task_id: UUID) -> TaskSummary:
        """A task in a few fields: status, revision, progress, the answer and its score."""
        with self._uow(self._tenant_id) as uow, _missing_network_named(uow, network_id):
            return uow.tasks.summary(task_id, network_id=network_id)

    def read(
        self,
        network_id: UUID,
        task_id: UUID,
        *,
        known: int | None = None,
        wait: float = 0.0,
        until_ended: bool = False,
        summary: bool = False,
    ) -> Task | TaskSummary | Unchanged:
        """The task (or its summary), or Unchanged while it is still at revision `known`.

        A client that names the revision it has learns that nothing changed from Redis alone,
        without a read of the record. With `wait`, an unfinished task still at `known` is
        waited on for up to `wait` seconds, and read as soon as it changes; `until_ended`
        waits past its changes for its end, so that a client that wants only the result is
        answered once, however many steps the task records meanwhile.
        """
        if known is not None:
            current = self.revision(network_id, task_id)
            if current.revision == known:
                if wait <= 0:
                    return Unchanged(known)
                # An ended task answers at once: it will not change again.
                if not current.status.is_terminal:
                    waited = self._wait_for(network_id, task_id, known, wait, until_ended)
                    if waited is None:
                        return Unchanged(known)
        return self.summary(network_id, task_id) if summary else self.get(network_id, task_id)

    def _wait_for(
        self, network_id: UUID, task_id: UUID, known: int, timeout: float, until_ended: bool
    ) -> Revision | None:
        """The revision the wait ended on (the end's, with `until_ended`, if it came in
        time; else the last change), or None if the task stayed at `known`."""
        deadline = time.monotonic() + timeout
        after, changed = known, None
        while (left := deadline - time.monotonic()) > 0:
            found = self._wait(network_id, task_id, after=after, timeout=left)
            if found is None:
                break
            changed, after = found, found.revision
            if not until_ended or found.status.is_terminal:
                break
        return changed

    def revision(self, network_id: UUID, task_id: UUID) -> Revision:
        """The task's revision and status: from Redis when it knows them, else the record."""
        try:
            found = self._revisions.current(self._tenant_id, network_id, task_id)
        except Unavailable:
            return self._recorded_revision(network_id, task_id)
        if found is None:
            found = self._recorded_revision(network_id, task_id)
            # Known from now on, until the next change moves it on.
            change = TaskChange(self._tenant_id, network_id, task_id, *_fields(found))
            self._revisions.publish([change])
        return found

    def _recorded_revision(self, network_id: UUID, task_id: UUID) -> Revision:
        with self._uow(self._tenant_id) as uow, _missing_network_named(uow, network_id):
            return uow.tasks.revision(task_id, network_id=network_id)

    def _wait(
        self, network_id: UUID, task_id: UUID, *, after: int, timeout: float
    ) -> Revision | None:
        """The task's revision once it passes `after`, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        try:
            return self._revisions.wait(
                self._tenant_id, network_id, task_id, after=after, timeout=timeout
            )
        except Unavailable:
            log.info("task.wait_on_record", task_id=str(task_id))
        # Redis is away: the record is asked again every second, holding no connection between.
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, RECORD_POLL_SECONDS))
            found = self._recorded_revision(network_id, task_id)
            if found.revision > after:
                return found
        return None

    def events(
        self, network_id: UUID, task_id: UUID, *, after: int = 0, heartbeat: float = 15.0
    ) -> Iterator[HistoryEntry | None]:
        """The task's events numbered above `after`, as they are recorded, up to its last.

        NotFound is raised here, before the first event. The iterator yields None when
        `heartbeat` seconds pass without an event, and stops once the task has ended and
        every event recorded so far was sent (the final one's detail carries the result;
        webhook attempts, the only events after it, come with the rest).
        """
        self.revision(network_id, task_id)
        return self._follow(network_id, task_id, after, heartbeat)

    def _follow(
        self, network_id: UUID, task_id: UUID, after: int, heartbeat: float
    ) -> Iterator[HistoryEntry | None]:
        last, has_ended = after, False
        while True:
            with self._uow(self._tenant_id) as uow:
                found = uow.tasks.events(task_id, after=last, limit=EVENT_BATCH)
                final = next((e for e in found if _is_final(e)), None)
                ended = uow.tasks.get(task_id).result if final is not None else None
                result = ended.to_json() if ended is not None else None
            for entry in found:
                if entry is final:
                    has_ended = True
                    entry = replace(entry, detail={**entry.detail, "result": result})
                yield entry
                last = entry.seq
            if len(found) == EVENT_BATCH:
                continue
            if has_ended:
                # The record holds nothing past `last`: the client has every event there is.
                # Webhook attempts may follow the end; one who connects later reads them too.
                return
            current = self.revision(network_id, task_id)
            if current.status.is_terminal and current.revision <= last:
                return  # the client has every event there will be
            if current.revision <= last and (
                self._wait(network_id, task_id, after=last, timeout=heartbeat) is None
            ):
                yield None

    def cancel(self, network_id: UUID, task_id: UUID) -> Task:
        """End an unfinished task `cancelled`, keeping what was done; Conflict if it ended.

        Once this commits, no step of the task begins a model call, a step that finishes is
        discarded, and no message delivered later can move the task again.
        """
        with self._uow(self._tenant_id) as uow:
            with _missing_network_named(uow, network_id):
                task = uow.tasks.locked_in_network(task_id, network_id=network_id)
            task.check_cancellable()
            end(uow, self._clock, task, TaskStatus.CANCELLED, "cancelled by request")
        log.info("task.cancelled", task_id=str(task_id))
        return self.get(network_id, task_id)

    def approve(
        self, network_id: UUID, task_id: UUID, plan: list[dict[str, object]] | None = None
    ) -> Task:
        """Approve the plan a task awaits approval of, or `plan` in its place: the task runs
        its first wave, with the network's timeout from now. Conflict unless it awaits
        approval; InvalidPlan, changing nothing, for a plan the network cannot run (checked
        as a submitted plan is); Overloaded, the task left waiting, while the fleet's
        backlog is past its bound: an approval sets a whole plan going, as a submit does."""
        if (overloaded := self._refusal()) is not None:
            raise overloaded
        with self._uow(self._tenant_id) as uow:
            with _missing_network_named(uow, network_id):
                task = uow.tasks.locked_in_network(task_id, network_id=network_id)
            task.check_awaiting_approval("approved")
            network = uow.networks.get(network_id)
            now = self._clock.now()
            if plan is not None:
                edited = validate_plan(parse_plan(plan), network.agent_types())
                # Pinned as the coordinator's plan is: the steps run the versions of now.
                types = current_types(uow, {s.agent_type for s in edited.subtasks})
                uow.tasks.replace_plan(task_id, task.iteration, edited.pinned(types), now=now)
            task.approve(
                now=now, timeout_seconds=network.config.timeout_seconds, edited=plan is not None
            )
            uow.tasks.save(task)
            uow.commit()
        log.info("task.approved", task_id=str(task_id), edited=plan is not None)
        ref = self._ref(task)
        try:
            self._dispatcher.expire(ref, task.deadline_at)
            # The coordinator sends the first wave of the approved plan.
            self._dispatcher.coordinate(ref)
        except Unavailable as exc:
            # Approved all the same: the sweeper sends the wave once the broker is back.
            log.warning("task.enqueue_deferred", task_id=str(task_id), error=str(exc))
            self._mark_undelivered(task)
        return self.get(network_id, task_id)

    def reject(self, network_id: UUID, task_id: UUID, reason: str) -> Task:
        """End a task whose plan awaits approval `cancelled`, saying the plan was rejected and
        why; Conflict unless it awaits approval."""
        with self._uow(self._tenant_id) as uow:
            with _missing_network_named(uow, network_id):
                task = uow.tasks.locked_in_network(task_id, network_id=network_id)
            task.check_awaiting_approval("rejected")
            if not reason.strip():
                raise InvalidInput("reason", "must say why the plan is rejected")
            end(uow, self._clock, task, TaskStatus.CANCELLED, f"plan rejected: {reason.strip()}")
        log.info("task.rejected", task_id=str(task_id))
        return self.get(network_id, task_id)

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


@contextmanager
def _missing_network_named(uow: UnitOfWork, network_id: UUID) -> Iterator[None]:
    """A task not found in a network that does not exist either is reported as the network."""
    try:
        yield
    except NotFound:
        uow.networks.require(network_id)
        raise


def _is_final(entry: HistoryEntry) -> bool:
    return entry.kind == EventKind.TRANSITION and entry.status.is_terminal


def _fields(found: Revision) -> tuple[int, TaskStatus]:
    return found.revision, found.status
