"""The MemoryLifetimeRepository port over the fakes' tables (tests/fakes.py): counts by
counting, as the SQL count is kept to mean, and deletes as the SQL schema cascades."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from meshcore.domain.errors import NotFound
from meshcore.domain.lifetimes import (
    Holding,
    MemoryPolicy,
    ends_with_its_task,
    promoted,
    renewed,
)
from meshcore.domain.memory import MemoryItem
from meshcore.ports import Forgotten

if TYPE_CHECKING:
    from tests.fakes import FakeDatabase, Tables


class FakeLifetimeRepository:
    def __init__(self, tables: Tables, tenant_id: str, database: FakeDatabase) -> None:
        self._rows, self._tenant_id = tables, tenant_id

    def policy(self, network_id: UUID) -> MemoryPolicy | None:
        network = self._rows.networks.get(network_id)
        if network is None or network.tenant_id != self._tenant_id:
            return None
        return network.config.memory

    def count(self, network_id: UUID, *, adding: int = 0) -> int:
        return len(self._mine(network_id))

    def set_count(self, network_id: UUID, items: int) -> None:
        return None

    def holdings(self, network_id: UUID) -> list[Holding]:
        uses: dict[UUID, int] = {}
        for tenant, change in self._rows.confidence_changes.values():
            if tenant == self._tenant_id:
                uses[change.item_id] = uses.get(change.item_id, 0) + 1
        return [
            Holding(m.id, m.confidence, m.created_at, uses.get(m.id, 0))
            for m in self._mine(network_id)
        ]

    def evict(self, network_id: UUID, item_ids: Sequence[UUID]) -> list[UUID]:
        mine = {m.id for m in self._mine(network_id)}
        gone = [i for i in item_ids if i in mine]
        rows = self._rows
        for item_id in gone:
            del rows.memory[item_id]
        doomed = set(gone)
        for key, (_, change) in list(rows.confidence_changes.items()):
            if change.item_id in doomed:
                del rows.confidence_changes[key]
        for pair in [p for p in rows.memory_links if doomed & set(p)]:
            del rows.memory_links[pair]
        for key, (_, holder, _) in list(rows.memory_restatements.items()):
            if holder in doomed:
                del rows.memory_restatements[key]
        return gone

    def promote(self, network_id: UUID, item_id: UUID, *, at: datetime) -> MemoryItem:
        item = self._rows.memory.get(item_id)
        if item is None or (item.tenant_id, item.network_id) != (self._tenant_id, network_id):
            raise NotFound("memory item", item_id)
        self._rows.memory[item_id] = promoted(item, at)
        return self._rows.memory[item_id]

    def renew(self, network_id: UUID, item_id: UUID, *, until: datetime) -> None:
        item = self._rows.memory.get(item_id)
        if item is not None and (item.tenant_id, item.network_id) == (self._tenant_id, network_id):
            self._rows.memory[item_id] = replace(item, expires_at=renewed(item.expires_at, until))

    def _mine(self, network_id: UUID) -> list[MemoryItem]:
        return [
            m
            for m in self._rows.memory.values()
            if (m.tenant_id, m.network_id) == (self._tenant_id, network_id)
        ]


class FakeMemoryExpiry:
    """The MemoryExpiry port over a FakeDatabase's committed rows, as SQL's sweep deletes."""

    def __init__(self, database: FakeDatabase) -> None:
        self._db = database

    def forget_expired(self, now: datetime, limit: int) -> list[Forgotten]:
        due = [
            m
            for m in self._db.committed.memory.values()
            if m.expires_at is not None and m.expires_at <= now
        ]
        due.sort(key=lambda m: m.expires_at or now)
        return self._forget(due[:limit])

    def forget_of_ended_tasks(self, limit: int) -> list[Forgotten]:
        tasks = self._db.committed.tasks
        ended = [
            m
            for m in self._db.committed.memory.values()
            if ends_with_its_task(m)
            and (task := tasks.get(UUID(str(m.task_id)))) is not None
            and task.tenant_id == m.tenant_id
            and task.status.is_terminal
        ]
        return self._forget(ended[:limit])

    def _forget(self, items: list[MemoryItem]) -> list[Forgotten]:
        for m in items:
            FakeLifetimeRepository(self._db.committed, m.tenant_id, self._db).evict(
                m.network_id, [m.id]
            )
        return [Forgotten(m.tenant_id, m.network_id, m.id) for m in items]
