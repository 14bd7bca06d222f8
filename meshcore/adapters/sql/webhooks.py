"""Webhook deliveries in the record: leased for an attempt, then recorded."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.engine import Row

from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.rows import aware
from meshcore.adapters.sql.tables import webhook_deliveries
from meshcore.domain.task import HistoryEntry
from meshcore.domain.webhooks import Delivery, DeliveryStatus


class SqlWebhookRepository(Repository):
    """Webhook deliveries: leased for an attempt, then recorded."""

    def lease(self, delivery_id: UUID, *, now: datetime, until: datetime) -> Delivery | None:
        """The pending delivery, leased until `until`; None if it is not due, or is leased,
        delivered or given up on."""
        d = webhook_deliveries.c
        row = (
            self._db.execute(
                webhook_deliveries.update()
                .where(
                    d.id == delivery_id,
                    d.tenant_id == self._tenant_id,
                    d.status == DeliveryStatus.PENDING.value,
                    d.next_attempt_at <= now,
                    sa.or_(d.leased_until.is_(None), d.leased_until < now),
                )
                .values(leased_until=until)
                .returning(*webhook_deliveries.c)
            )
            .mappings()
            .first()
        )
        return _delivery(row) if row is not None else None

    def record(
        self,
        delivery_id: UUID,
        *,
        attempts: int,
        status: DeliveryStatus,
        next_attempt_at: datetime,
    ) -> None:
        d = webhook_deliveries.c
        self._db.execute(
            webhook_deliveries.update()
            .where(d.id == delivery_id, d.tenant_id == self._tenant_id)
            .values(
                attempts=attempts,
                status=status.value,
                next_attempt_at=next_attempt_at,
                leased_until=None,
            )
        )

    def for_task(self, task_id: UUID) -> list[Delivery]:
        d = webhook_deliveries.c
        rows = self._db.execute(
            webhook_deliveries.select()
            .where(d.task_id == task_id, d.tenant_id == self._tenant_id)
            .order_by(d.event_seq)
        ).mappings()
        return [_delivery(r) for r in rows]


def _delivery(row: Row | dict) -> Delivery:
    return Delivery(
        id=row["id"],
        tenant_id=row["tenant_id"],
        task_id=row["task_id"],
        network_id=row["network_id"],
        event_seq=row["event_seq"],
        event_type=row["event_type"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=aware(row["next_attempt_at"]),
    )


def delivery_row(
    tenant_id: str, task_id: UUID, network_id: UUID, event: HistoryEntry
) -> dict[str, object]:
    """A new delivery of `event`, due at once: made in the event's own transaction."""
    return {
        "id": uuid4(),
        "tenant_id": tenant_id,
        "task_id": task_id,
        "network_id": network_id,
        "event_seq": event.seq,
        "event_type": event.type,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": event.at,
        "created_at": event.at,
    }
