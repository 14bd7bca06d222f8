"""Memory's lifetimes and bound in the record (domain/lifetimes.py).

Locks, in the order every writer of memory takes them: an item's row (a restatement or a
verdict moves its confidence), then the network's count (after the write, as the last
memory statement of the transaction), then the agent's row (step_log.py). Eviction and the
sweep lock items only with SKIP LOCKED: an item another transaction holds is in use, so it
is passed over rather than waited for, and no transaction that holds a count ever waits for
an item. SQLite serialises writers at BEGIN (engine.py) and ignores both clauses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from meshcore.adapters.sql.lifetimes_json import policy_from_json
from meshcore.adapters.sql.memory_rows import memory_from_row
from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.rows import aware
from meshcore.adapters.sql.tables import (
    memory_confidence_changes,
    memory_counts,
    memory_items,
    networks,
)
from meshcore.domain.errors import NotFound
from meshcore.domain.lifetimes import Holding, MemoryPolicy
from meshcore.domain.memory import MemoryItem

m, counts, changes = memory_items.c, memory_counts.c, memory_confidence_changes.c
# Ids per statement: an eviction of 1 % of a large bound would otherwise be one huge IN list.
_CHUNK = 1000


class SqlLifetimeRepository(Repository):
    def policy(self, network_id: UUID) -> MemoryPolicy | None:
        config = self._db.execute(
            sa.select(networks.c.config).where(
                networks.c.tenant_id == self._tenant_id, networks.c.id == network_id
            )
        ).scalar()
        return None if config is None else policy_from_json(config.get("memory"))

    def count(self, network_id: UUID, *, adding: int = 0) -> int:
        held = self._db.execute(
            counts_of(self._tenant_id, network_id)
            .values(item_count=counts.item_count + adding)
            .returning(counts.item_count)
        ).scalar()
        if held is not None:
            return int(held)
        # First needed: count the network once. This transaction's own items are counted
        # already, `adding` among them. A writer that made the row meanwhile wins; then add.
        counted = (
            sa.select(
                sa.literal(network_id, sa.Uuid),
                sa.literal(self._tenant_id),
                sa.func.count(),
            )
            .select_from(memory_items)
            .where(m.tenant_id == self._tenant_id, m.network_id == network_id)
        )
        made = self._db.execute(
            _insert(self._db.dialect.name, memory_counts)
            .from_select(["network_id", "tenant_id", "item_count"], counted)
            .on_conflict_do_nothing()
            .returning(counts.item_count)
        ).scalar()
        return int(made) if made is not None else self.count(network_id, adding=adding)

    def set_count(self, network_id: UUID, items: int) -> None:
        self._db.execute(counts_of(self._tenant_id, network_id).values(item_count=max(0, items)))

    def holdings(self, network_id: UUID) -> list[Holding]:
        rows = self._db.execute(
            sa.select(m.id, m.confidence, m.created_at, sa.func.count(changes.id))
            .select_from(memory_items.outerjoin(memory_confidence_changes, changes.item_id == m.id))
            .where(m.tenant_id == self._tenant_id, m.network_id == network_id)
            .group_by(m.id, m.confidence, m.created_at)
        ).all()
        return [Holding(i, c, aware(at), int(uses)) for i, c, at, uses in rows]

    def evict(self, network_id: UUID, item_ids: Sequence[UUID]) -> list[UUID]:
        gone: list[UUID] = []
        for chunk in _chunks(item_ids):
            free = (
                sa.select(m.id)
                .where(m.tenant_id == self._tenant_id, m.network_id == network_id, m.id.in_(chunk))
                .with_for_update(skip_locked=True)
            )
            gone += self._db.execute(
                memory_items.delete().where(m.id.in_(free)).returning(m.id)
            ).scalars()
        return gone

    def promote(self, network_id: UUID, item_id: UUID, *, at: datetime) -> MemoryItem:
        row = (
            self._db.execute(
                memory_items.update()
                .where(m.tenant_id == self._tenant_id, m.network_id == network_id, m.id == item_id)
                .values(promoted_at=sa.func.coalesce(m.promoted_at, at), expires_at=None)
                .returning(*memory_items.c)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("memory item", item_id)
        return memory_from_row(row, self._sealer)

    def renew(self, network_id: UUID, item_id: UUID, *, until: datetime) -> None:
        # One statement, so it needs no lock of its own: the row's is taken and held to the
        # commit, after the merge's (an item's row, then its count: the writers' order).
        self._db.execute(
            memory_items.update()
            .where(
                m.tenant_id == self._tenant_id,
                m.network_id == network_id,
                m.id == item_id,
                m.expires_at < until,
            )
            .values(expires_at=until)
        )


def counts_of(tenant_id: str, network_id: UUID) -> sa.Update:
    return memory_counts.update().where(
        counts.tenant_id == tenant_id, counts.network_id == network_id
    )


def _insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _chunks(ids: Sequence[UUID]) -> Iterator[list[UUID]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])
