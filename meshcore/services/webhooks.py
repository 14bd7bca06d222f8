"""Delivering a task's events to its webhook: one attempt per message, each recorded on the
delivery and in the task's log, the next one scheduled with backoff until the receiver
answers 2xx or the attempts run out.

A delivery row is made with the event it delivers (same transaction), so none is lost: the
message that sends it is enqueued after the commit, and the sweeper sends again any that is
due and not leased (a lost message, a retry too far off to hold on the broker). A lease makes
a duplicate message do nothing while an attempt runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import structlog

from meshcore.domain.errors import NotFound, Unavailable
from meshcore.domain.task import EventKind, HistoryEntry, Task
from meshcore.domain.webhooks import (
    Attempt,
    Delivery,
    DeliveryStatus,
    RetryPolicy,
    TaskSnapshot,
    headers,
    payload,
)
from meshcore.ports import Clock, DeliveryRef, Dispatcher, UnitOfWorkFactory, WebhookSender

log = structlog.get_logger(__name__)

# A retry further off than this is left to the sweeper rather than held on the broker: a
# message with an ETA past the Redis visibility timeout would be handed out twice.
LONGEST_COUNTDOWN_SECONDS = 300.0
# How long an attempt holds its delivery, beyond the request's own timeout.
LEASE_MARGIN_SECONDS = 30.0


class WebhookService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        sender: WebhookSender,
        dispatcher: Dispatcher,
        clock: Clock,
        policy: RetryPolicy | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._uow, self._sender, self._dispatcher, self._clock = uow, sender, dispatcher, clock
        self._policy = policy or RetryPolicy()
        self._lease = timedelta(seconds=timeout_seconds + LEASE_MARGIN_SECONDS)

    def deliver(self, ref: DeliveryRef) -> DeliveryStatus | None:
        """Make the delivery's next attempt; None when it is not due, leased or settled."""
        now = self._clock.now()
        with self._uow(ref.tenant_id) as uow:
            delivery = uow.webhooks.lease(ref.delivery_id, now=now, until=now + self._lease)
            if delivery is None:
                return None
            task = uow.tasks.get(delivery.task_id)
            events = uow.tasks.events(task.id, after=delivery.event_seq - 1, limit=1)
            secret = uow.networks.webhook_secret(task.network_id)
            uow.commit()
        if task.webhook is None or not events or secret is None:
            attempt = Attempt(None, 0.0, "nothing to deliver: no webhook, event or secret")
            return self._record(ref, delivery, task, attempt, is_final=True)
        event = events[0]
        body = payload(_snapshot(task, delivery, event))
        message_id = f"msg_{delivery.id.hex}"
        timestamp = int(self._clock.now().timestamp())
        attempt = self._sender.send(
            task.webhook.url,
            body=body,
            headers=headers(secret, message_id=message_id, timestamp=timestamp, body=body),
        )
        return self._record(ref, delivery, task, attempt)

    def _record(
        self,
        ref: DeliveryRef,
        delivery: Delivery,
        task: Task,
        attempt: Attempt,
        *,
        is_final: bool = False,
    ) -> DeliveryStatus:
        number = delivery.attempts + 1
        delay = None if attempt.is_delivered or is_final else self._policy.delay(number)
        if attempt.is_delivered:
            status = DeliveryStatus.DELIVERED
        else:
            status = DeliveryStatus.PENDING if delay is not None else DeliveryStatus.FAILED
        now = self._clock.now()
        entry = HistoryEntry(
            now,
            EventKind.WEBHOOK,
            task.status,
            detail={
                "delivery_id": str(delivery.id),
                "event_type": delivery.event_type,
                "event_id": delivery.event_seq,
                "attempt": number,
                "status_code": attempt.status_code,
                "latency_ms": round(attempt.latency_ms, 1),
                "error": attempt.error,
                "outcome": status.value,
                "next_attempt_in_seconds": round(delay, 1) if delay is not None else None,
            },
        )
        try:
            with self._uow(ref.tenant_id) as uow:
                uow.webhooks.record(
                    delivery.id,
                    attempts=number,
                    status=status,
                    next_attempt_at=now + timedelta(seconds=delay or 0),
                )
                uow.tasks.add_webhook_attempt(task.id, entry)
                uow.commit()
        except NotFound:
            log.info("webhook.task_gone", delivery_id=str(delivery.id))
            return status
        log.info(
            "webhook.attempted",
            delivery_id=str(delivery.id),
            task_id=str(task.id),
            attempt=number,
            status_code=attempt.status_code,
            outcome=status.value,
        )
        if delay is not None and delay <= LONGEST_COUNTDOWN_SECONDS:
            self.send_later(ref, countdown=delay)
        return status

    def send_later(self, ref: DeliveryRef, *, countdown: float = 0.0) -> None:
        """Enqueue the delivery's next attempt; a broker that is away leaves it to the sweeper."""
        try:
            self._dispatcher.deliver_webhook(ref, countdown=countdown)
        except Unavailable as exc:
            log.warning(
                "webhook.enqueue_deferred", delivery_id=str(ref.delivery_id), error=str(exc)
            )

    def send_made(self, refs: Sequence[DeliveryRef]) -> None:
        """Enqueue deliveries a transaction has just committed."""
        for ref in refs:
            self.send_later(ref)


def _snapshot(task: Task, delivery: Delivery, event: HistoryEntry) -> TaskSnapshot:
    # The answer and error belong to the ending; a status change in between carries none.
    is_ending = event.status.is_terminal
    result = task.result if is_ending else None
    answer, score = (result.answer, result.score) if result is not None else (None, None)
    return TaskSnapshot(
        task_id=task.id,
        network_id=task.network_id,
        event_type=delivery.event_type,
        event_seq=delivery.event_seq,
        at=event.at,
        status=event.status.value,
        answer=answer,
        score=float(score) if score is not None else None,
        error=task.error if is_ending else None,
    )


def refusal_of(sender: WebhookSender | None, url: str) -> str | None:
    """Why a webhook URL is refused at registration, or None (no sender: no network check)."""
    return sender.refusal(url) if sender is not None else None
