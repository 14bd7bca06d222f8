"""Re-sealing the record under the first data key, a batch at a time, while Mesh runs.

Each batch is one short transaction, committed, so a rotation that stops resumes where the
record still holds old tokens (a value already under the first key is skipped). No row is
locked: each UPDATE names the values it read, so a row that Mesh changed meanwhile is left
as Mesh wrote it (under the first key already, if every process has the new key list).

A memory item's fingerprints are keyed hashes under the first key too (memory_rows.py): they
are computed again as its content is re-sealed, so that no hash under a retired key outlives
the rotation, and restatements keep finding the item once the old key is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from meshcore.adapters.sealing import DataKeyError, Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.memory_rows import hashed_texts
from meshcore.adapters.sql.tables import (
    agent_types,
    memory_items,
    steps,
    subtasks,
    task_events,
    task_ratings,
    tasks,
    tool_calls,
)
from meshcore.domain.memory import MemoryType

# What is derived from a row's sealed values under the first key, and re-derived as they are
# re-sealed: given the connection, the sealer and the row's values read, the columns to set.
Derive = Callable[[sa.Connection, Sealer, Mapping[str, Any]], dict[str, object]]


@dataclass(frozen=True)
class SealedColumns:
    """A table's sealed columns, which its row shaping seals (rows.py says where): text, and
    JSON holding a token."""

    table: sa.Table
    text: tuple[str, ...] = ()
    json: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()  # the other columns `derive` needs
    derive: Derive | None = None


def _memory_fingerprints(
    db: sa.Connection, sealer: Sealer, row: Mapping[str, Any]
) -> dict[str, object]:
    """An item's fingerprint and subject under the first key, where it has them (rows from
    before migration 0016 have none). A fingerprint another item of the network already holds
    under the first key (two writers on two key lists wrote one text at once) is dropped from
    this row: that item holds the text, and the unique index allows one."""
    if row["fingerprint"] is None and row["subject"] is None:
        return {}
    type = MemoryType(row["type"])
    text, subject = hashed_texts(
        row["tenant_id"], row["network_id"], type, sealer.open(row["content"])
    )
    found: dict[str, object] = {}
    if row["subject"] is not None and subject is not None:
        found["subject"] = sealer.fingerprint(subject)
    if row["fingerprint"] is not None and text is not None:
        fingerprint = sealer.fingerprint(text)
        taken = db.execute(
            sa.select(memory_items.c.id).where(
                memory_items.c.tenant_id == row["tenant_id"],
                memory_items.c.network_id == row["network_id"],
                memory_items.c.type == type.value,
                memory_items.c.fingerprint == fingerprint,
                memory_items.c.id != row["id"],
            )
        ).first()
        found["fingerprint"] = None if taken else fingerprint
    return found


SEALED = (
    SealedColumns(tasks, text=("description", "error"), json=("context", "plan", "result")),
    SealedColumns(subtasks, text=("description",)),
    SealedColumns(steps, text=("output", "error")),
    SealedColumns(task_events, json=("detail",)),
    SealedColumns(
        memory_items,
        text=("content",),
        json=("metadata",),
        reads=("tenant_id", "network_id", "type", "fingerprint", "subject"),
        derive=_memory_fingerprints,
    ),
    SealedColumns(agent_types, json=("definition",)),
    SealedColumns(tool_calls, text=("arguments", "result")),
    SealedColumns(task_ratings, text=("comment",)),
)


@dataclass
class TableRotation:
    """What a rotation did to one table's rows."""

    table: str
    resealed: int = 0
    current: int = 0  # already under the first key
    changed: int = 0  # written by Mesh between read and update: left as Mesh wrote it
    unreadable: list[str] = field(default_factory=list)  # ids of rows no key opens


def rotate_record(
    engine: sa.Engine,
    sealer: Sealer,
    *,
    tenant_id: str | None = None,
    batch: int = 500,
    on_batch: Callable[[TableRotation], None] | None = None,
) -> list[TableRotation]:
    """Re-seal every sealed value (of one tenant, or of all) under the first key."""
    tenancy.install(engine)
    found = []
    for sealed in SEALED:
        done = TableRotation(sealed.table.name)
        for rows in _batches(engine, sealed, tenant_id, batch):
            with _connect(engine, tenant_id) as db, db.begin():
                for row in rows:
                    _reseal(db, sealed, sealer, row, done)
            if on_batch is not None:
                on_batch(done)
        found.append(done)
    return found


def _connect(engine: sa.Engine, tenant_id: str | None) -> sa.Connection:
    # Row-level security admits a transaction only to the rows of the tenant it names.
    if tenant_id is None:
        return tenancy.across_tenants(engine).connect()
    return tenancy.scoped(engine.connect(), tenant_id)


def _batches(
    engine: sa.Engine, sealed: SealedColumns, tenant_id: str | None, batch: int
) -> Iterator[list[sa.Row]]:
    """The table's rows in primary key order, `batch` at a time, each batch read afresh."""
    table = sealed.table
    key = list(table.primary_key.columns)
    read = dict.fromkeys(c for c in sealed.text + sealed.json + sealed.reads if c not in key)
    query = sa.select(*key, *(table.c[c] for c in read)).order_by(*key)
    if tenant_id is not None:
        query = query.where(table.c.tenant_id == tenant_id)
    after: tuple[object, ...] | None = None
    while True:
        page = query if after is None else query.where(sa.tuple_(*key) > sa.tuple_(*after))
        with _connect(engine, tenant_id) as db, db.begin():
            rows = list(db.execute(page.limit(batch)).all())
        if not rows:
            return
        yield rows
        after = tuple(rows[-1][: len(key)])
        if len(rows) < batch:
            return


def _reseal(
    db: sa.Connection, sealed: SealedColumns, sealer: Sealer, row: sa.Row, done: TableRotation
) -> None:
    table, values = sealed.table, row._mapping
    key = [c.name for c in table.primary_key.columns]
    try:
        changes = {
            c: sealer.rotate(values[c])
            for c in sealed.text
            if values[c] is not None and not sealer.is_current(values[c])
        }
        changes |= {
            c: sealer.rotate_json(values[c])
            for c in sealed.json
            if values[c] is not None and not sealer.is_current(values[c])
        }
    except DataKeyError:
        done.unreadable.append("/".join(str(values[k]) for k in key))
        return
    if not changes:
        done.current += 1
        return
    # Bound as the column's own type: a JSON column's token must compare as JSON, not text.
    unchanged = [
        table.c[c] == sa.bindparam(f"p_read_{c}", values[c], type_=table.c[c].type) for c in changes
    ]
    if sealed.derive is not None:
        try:
            changes |= sealed.derive(db, sealer, values)
        except DataKeyError:
            done.unreadable.append("/".join(str(values[k]) for k in key))
            return
    updated = db.execute(
        table.update().where(*(table.c[k] == values[k] for k in key), *unchanged).values(changes)
    ).rowcount
    if updated:
        done.resealed += 1
    else:
        done.changed += 1
