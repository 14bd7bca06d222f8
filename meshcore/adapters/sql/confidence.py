"""What the memory repository records of confidence: each item's changes, with their reasons.

A change is made under the item's row lock, in the transaction that moves the item's
confidence, so concurrent verdicts on one item take turns and each starts from where the
last left it: the history is a chain, each `before` the previous `after`. Reasons are Mesh's
own words, not tenant content, so they are stored clear.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.rows import Row, aware, maybe_aware
from meshcore.adapters.sql.tables import memory_confidence_changes, memory_items
from meshcore.domain.confidence import ConfidenceChange, ConfidenceSource, Move

changes = memory_confidence_changes
# The item's confidence, its row held until the transaction ends. NO KEY UPDATE (key_share),
# as every lock of the record: rows that refer to the item check their foreign key with KEY
# SHARE, which this does not block. SQLite ignores the clause; its write lock, taken at BEGIN
# (engine.py), serialises the same way.
ITEM_LOCKED = (
    sa.select(memory_items.c.confidence)
    .where(
        memory_items.c.tenant_id == sa.bindparam("p_tenant_id"),
        memory_items.c.network_id == sa.bindparam("p_network_id"),
        memory_items.c.id == sa.bindparam("p_item_id"),
    )
    .with_for_update(key_share=True)
)
# A statement of its own, after the lock: under READ COMMITTED a new statement sees the change
# that the transaction this one waited for committed; a subquery of the locking statement
# would read its older snapshot.
LAST_AT = sa.select(sa.func.max(changes.c.at)).where(changes.c.item_id == sa.bindparam("p_item_id"))
SET_CONFIDENCE = (
    memory_items.update()
    .where(memory_items.c.id == sa.bindparam("p_item_id"))
    .values(confidence=sa.bindparam("p_confidence"))
)


class ConfidenceRecord(Repository):
    """The memory repository's half that keeps confidence: SqlMemoryRepository is one."""

    def change_confidence(
        self,
        network_id: UUID,
        item_id: UUID,
        move: Move,
        *,
        source: ConfidenceSource,
        reason: str,
        task_id: UUID | None,
        at: datetime,
    ) -> ConfidenceChange | None:
        before = self._db.execute(
            ITEM_LOCKED,
            {"p_tenant_id": self._tenant_id, "p_network_id": network_id, "p_item_id": item_id},
        ).scalar()
        if before is None:
            return None
        last_at = self._db.execute(LAST_AT, {"p_item_id": item_id}).scalar()
        change = ConfidenceChange.of(
            item_id,
            before,
            move,
            source=source,
            reason=reason,
            task_id=task_id,
            at=at,
            last_at=maybe_aware(last_at),
        )
        if change is None:
            return None
        self._db.execute(SET_CONFIDENCE, {"p_item_id": item_id, "p_confidence": change.after})
        self._db.execute(changes.insert(), change_row(self._tenant_id, change))
        return change

    def confidence_history(self, network_id: UUID, item_id: UUID) -> list[ConfidenceChange]:
        rows = self._db.execute(
            changes.select()
            .join(memory_items, memory_items.c.id == changes.c.item_id)
            .where(
                changes.c.tenant_id == self._tenant_id,
                changes.c.item_id == item_id,
                memory_items.c.tenant_id == self._tenant_id,
                memory_items.c.network_id == network_id,
            )
            .order_by(changes.c.at, changes.c.id)
        ).mappings()
        return [change_from_row(r) for r in rows]


def change_row(tenant_id: str, change: ConfidenceChange) -> dict[str, object]:
    return {
        "id": change.id,
        "tenant_id": tenant_id,
        "item_id": change.item_id,
        "task_id": change.task_id,
        "source": change.source.value,
        "reason": change.reason,
        "before": change.before,
        "after": change.after,
        "at": change.at,
    }


def change_from_row(row: Row) -> ConfidenceChange:
    return ConfidenceChange(
        id=row["id"],
        item_id=row["item_id"],
        task_id=row["task_id"],
        source=ConfidenceSource(row["source"]),
        reason=row["reason"],
        before=row["before"],
        after=row["after"],
        at=aware(row["at"]),
    )
