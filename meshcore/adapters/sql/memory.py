"""A network's memory in the record (a memory item as a row: memory_rows.py)."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from meshcore.adapters.sql.confidence import ConfidenceRecord
from meshcore.adapters.sql.memory_rows import memory_from_row, memory_row
from meshcore.adapters.sql.restatements import RestatementRecord
from meshcore.adapters.sql.tables import memory_items
from meshcore.domain.errors import NotFound
from meshcore.domain.memory import MemoryItem, MemoryQuery


class SqlMemoryRepository(ConfidenceRecord, RestatementRecord):
    """A network's memory items; what confidence learns is kept by ConfidenceRecord, and
    restatements and contradictions by RestatementRecord."""

    def add(self, item: MemoryItem) -> None:
        self._db.execute(memory_items.insert(), memory_row(item, self._sealer))

    def get(self, network_id: UUID, item_id: UUID) -> MemoryItem:
        row = (
            self._db.execute(
                memory_items.select().where(
                    memory_items.c.tenant_id == self._tenant_id,
                    memory_items.c.network_id == network_id,
                    memory_items.c.id == item_id,
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("memory item", item_id)
        return memory_from_row(row, self._sealer)

    def list(self, network_id: UUID, query: MemoryQuery) -> list[MemoryItem]:
        rows = self._db.execute(
            memory_items.select()
            .where(*self._matching(network_id, query))
            .order_by(memory_items.c.created_at.desc(), memory_items.c.id)
            .offset(query.offset)
            .limit(query.limit)
        ).mappings()
        return [memory_from_row(r, self._sealer) for r in rows]

    def count(self, network_id: UUID, query: MemoryQuery) -> int:
        return self._db.execute(
            sa.select(sa.func.count())
            .select_from(memory_items)
            .where(*self._matching(network_id, query))
        ).scalar_one()

    def _matching(self, network_id: UUID, query: MemoryQuery) -> list[sa.ColumnElement[bool]]:
        where = [
            memory_items.c.tenant_id == self._tenant_id,
            memory_items.c.network_id == network_id,
            memory_items.c.type.in_([t.value for t in query.types]),
            memory_items.c.confidence >= query.min_confidence,
        ]
        if query.task_id is not None:
            where.append(memory_items.c.task_id == query.task_id)
        return where

