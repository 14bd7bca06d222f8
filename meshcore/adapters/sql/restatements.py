"""What the memory repository records of restatements and contradictions.

A restatement is found by fingerprint (memory_rows.py), under every data key, so an item
fingerprinted before the first key changed is still found until a rotation has computed its
fingerprint again. Two writers of one text at once meet at the unique index on
(tenant_id, network_id, type, fingerprint): the second INSERT ... ON CONFLICT DO NOTHING
waits for the first to commit, inserts nothing, and finds the first's row.

Contradictions are looked for among the decisions of one subject only (its indexed keyed
hash), under a lock of that subject, so two opposite decisions written at once take turns
and the second finds the first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from meshcore.adapters.sql.memory_rows import hashed_texts, memory_from_row, memory_row
from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.rows import labelled
from meshcore.adapters.sql.tables import memory_items, memory_links, memory_restatements
from meshcore.domain.memory import MemoryItem
from meshcore.domain.restatement import as_output

CONTRADICTS = "contradicts"
# A subject with more decisions than this is compared with its newest ones only.
CANDIDATES = 100
# hashtextextended, as the quota locks (quotas.py): a 64-bit lock id from the text.
ADVISORY_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
_FINGERPRINT = ("tenant_id", "network_id", "type", "fingerprint")
# Built once, with bind parameters (rows.py): every write of a fact or decision runs them.
_OF_NETWORK_AND_TYPE = (
    memory_items.c.tenant_id == sa.bindparam("p_tenant_id"),
    memory_items.c.network_id == sa.bindparam("p_network_id"),
    memory_items.c.type == sa.bindparam("p_type"),
)
HOLDING = (
    sa.select(memory_items.c.id)
    .where(
        *_OF_NETWORK_AND_TYPE,
        memory_items.c.fingerprint.in_(sa.bindparam("p_fingerprints", expanding=True)),
    )
    .order_by(memory_items.c.created_at, memory_items.c.id)
    .limit(1)
)
ON_SUBJECT = (
    memory_items.select()
    .where(
        *_OF_NETWORK_AND_TYPE,
        memory_items.c.subject.in_(sa.bindparam("p_subjects", expanding=True)),
        memory_items.c.id != sa.bindparam("p_item_id"),
    )
    .order_by(memory_items.c.created_at.desc(), memory_items.c.id)
    .limit(CANDIDATES)
)
_RESTATED = sa.select(*labelled(memory_restatements, "r_"), *memory_items.c).join(
    memory_items, memory_items.c.id == memory_restatements.c.item_id
)


@functools.cache
def _admit(dialect: str) -> sa.Insert:
    """INSERT of an item unless its network holds its fingerprint, returning its id if in."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    return (
        insert(memory_items)
        .on_conflict_do_nothing(index_elements=list(_FINGERPRINT))
        .returning(memory_items.c.id)
    )


class RestatementRecord(Repository):
    """The memory repository's half that finds restatements and keeps links between items:
    SqlMemoryRepository is one."""

    def restated(self, item: MemoryItem) -> UUID | None:
        text, _ = hashed_texts(item.tenant_id, item.network_id, item.type, item.content)
        if text is None:
            return None
        found = self._sealer.fingerprints(text)
        return self._db.execute(HOLDING, {**self._of(item), "p_fingerprints": found}).scalar()

    def admit(self, item: MemoryItem) -> UUID | None:
        row = memory_row(item, self._sealer)
        if row["fingerprint"] is None:
            self._db.execute(memory_items.insert(), row)
            return None
        statement = _admit(self._db.dialect.name)
        holder = {**self._of(item), "p_fingerprints": [row["fingerprint"]]}
        # The row that won may be gone by the time it is looked for (its network deleted):
        # then this one goes in after all, or meets the next winner.
        for _ in range(3):
            if self._db.execute(statement, row).first() is not None:
                return None
            found = self._db.execute(HOLDING, holder).scalar()
            if found is not None:
                return found
        self._db.execute(memory_items.insert(), row)
        return None

    def same_subject(self, item: MemoryItem) -> list[MemoryItem]:
        _, subject = hashed_texts(item.tenant_id, item.network_id, item.type, item.content)
        if subject is None:
            return []
        subjects = self._sealer.fingerprints(subject)
        if self._db.dialect.name == "postgresql":
            # SQLite needs none: every write transaction begins IMMEDIATE there (engine.py).
            self._db.execute(ADVISORY_LOCK, {"name": f"mesh-subject:{subjects[0]}"})
        rows = self._db.execute(
            ON_SUBJECT, {**self._of(item), "p_subjects": subjects, "p_item_id": item.id}
        ).mappings()
        return [memory_from_row(r, self._sealer) for r in rows]

    def _of(self, item: MemoryItem) -> dict[str, object]:
        return {
            "p_tenant_id": self._tenant_id,
            "p_network_id": item.network_id,
            "p_type": item.type.value,
        }

    def link_contradictions(
        self, item_id: UUID, other_ids: Sequence[UUID], *, at: datetime
    ) -> None:
        tenant = self._tenant_id
        rows = [
            {"item_id": a, "other_id": b, "kind": CONTRADICTS, "tenant_id": tenant, "at": at}
            for other in other_ids
            for a, b in ((item_id, other), (other, item_id))
        ]
        if rows:
            self._insert_absent(memory_links, rows)

    def contradictions(self, item_ids: Sequence[UUID]) -> dict[UUID, tuple[UUID, ...]]:
        if not item_ids:
            return {}
        rows = self._db.execute(
            sa.select(memory_links.c.item_id, memory_links.c.other_id)
            .where(
                memory_links.c.tenant_id == self._tenant_id,
                memory_links.c.kind == CONTRADICTS,
                memory_links.c.item_id.in_(list(dict.fromkeys(item_ids))),
            )
            .order_by(memory_links.c.at, memory_links.c.other_id)
        )
        found: dict[UUID, tuple[UUID, ...]] = {}
        for item_id, other_id in rows:
            found[item_id] = (*found.get(item_id, ()), other_id)
        return found

    def note_restatement(self, output: MemoryItem, holder_id: UUID) -> None:
        iteration = output.metadata.get("iteration")
        if not (output.task_id and output.subtask and isinstance(iteration, int)):
            return
        self._insert_absent(
            memory_restatements,
            [
                {
                    "task_id": UUID(output.task_id),
                    "iteration": iteration,
                    "subtask": output.subtask,
                    "tenant_id": self._tenant_id,
                    "item_id": holder_id,
                    "source_agent": _text_or_none(output.metadata.get("source_agent")),
                    "agent_id": _uuid_or_none(output.metadata.get("agent_id")),
                    "at": output.created_at,
                }
            ],
        )

    def restatements(
        self, network_id: UUID, task_id: UUID, keys: Sequence[str]
    ) -> list[MemoryItem]:
        if not keys:
            return []
        rows = self._db.execute(
            _RESTATED.where(
                memory_restatements.c.tenant_id == self._tenant_id,
                memory_restatements.c.task_id == task_id,
                memory_restatements.c.subtask.in_(list(keys)),
                memory_items.c.tenant_id == self._tenant_id,
                memory_items.c.network_id == network_id,
            ).order_by(memory_restatements.c.at, memory_restatements.c.subtask)
        ).mappings()
        return [
            as_output(
                memory_from_row(r, self._sealer),
                source_agent=r["r_source_agent"],
                agent_id=str(r["r_agent_id"]) if r["r_agent_id"] else None,
                task_id=str(r["r_task_id"]),
                subtask=r["r_subtask"],
                iteration=r["r_iteration"],
            )
            for r in rows
        ]


def _text_or_none(value: object) -> str | None:
    return value[:32] if isinstance(value, str) and value else None


def _uuid_or_none(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None
