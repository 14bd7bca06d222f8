"""The sweep's deletes of memory whose lifetime is over (domain/lifetimes.py), across
tenants: the only memory statements that are. Items go a batch at a time, each locked with
SKIP LOCKED (one a writer holds is in use: it goes at a later sweep), and then their
networks' counts go down, in the order writers take them (adapters/sql/lifetimes.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import sqlalchemy as sa

from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.lifetimes import counts_of
from meshcore.adapters.sql.tables import memory_counts, memory_items, tasks
from meshcore.adapters.sql.uow import UNAVAILABLE, unavailable
from meshcore.domain.memory import MemoryType
from meshcore.domain.task import TERMINAL
from meshcore.ports import Forgotten

m = memory_items.c
ENDED = [s.value for s in TERMINAL]


class SqlMemoryExpiry:
    """The sweep's deletes, across tenants (the only memory statements that are)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def forget_expired(self, now: datetime, limit: int) -> list[Forgotten]:
        due = (
            sa.select(m.id)
            .where(m.expires_at <= now)
            .order_by(m.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return self._forget(due)

    def forget_of_ended_tasks(self, limit: int) -> list[Forgotten]:
        # The predicate of ix_memory_task_context, so that the index is what is read.
        ended = (
            sa.select(m.id)
            .select_from(memory_items.join(tasks, tasks.c.id == m.task_id))
            .where(
                m.type == MemoryType.CONTEXT.value,
                m.task_id.is_not(None),
                m.promoted_at.is_(None),
                tasks.c.tenant_id == m.tenant_id,
                tasks.c.status.in_(ENDED),
            )
            .limit(limit)
            .with_for_update(of=memory_items, skip_locked=True)
        )
        return self._forget(ended)

    def _forget(self, chosen: sa.Select) -> list[Forgotten]:
        try:
            with tenancy.across_tenants(self._engine).begin() as db:
                rows = db.execute(
                    memory_items.delete()
                    .where(m.id.in_(chosen))
                    .returning(m.tenant_id, m.network_id, m.id)
                ).all()
                per_network = Counter((tenant, network) for tenant, network, _ in rows)
                # In one order, so two sweeps at once never wait for each other's counts.
                for (tenant, network), gone in sorted(per_network.items(), key=str):
                    db.execute(
                        counts_of(tenant, network).values(
                            item_count=memory_counts.c.item_count - gone
                        )
                    )
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        return [Forgotten(tenant, network, item) for tenant, network, item in rows]
