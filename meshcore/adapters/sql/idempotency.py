"""Idempotency keys in the record (the IdempotencyRepository port).

The claim is one upsert on the (tenant, key) primary key. A concurrent create holding the same
key has inserted it in its own uncommitted transaction, so the upsert waits until that commits
(then finds its row) or rolls back (then takes the key): of concurrent creates under one key,
exactly one creates, and the others answer with what it made. A key past its lifetime is
taken anew by the upsert's WHERE.
"""

from __future__ import annotations

import functools
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from meshcore.adapters.sql.rows import aware
from meshcore.adapters.sql.tables import idempotency_keys as keys
from meshcore.domain.idempotency import Created, IdempotencyKey, PriorCreate


@functools.cache
def _claim(dialect: str) -> sa.Insert:
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(keys)
    return insert.on_conflict_do_update(
        index_elements=[keys.c.tenant_id, keys.c.key],
        set_={
            "fingerprint": insert.excluded.fingerprint,
            "created": insert.excluded.created,
            "resource_id": None,
            "created_at": insert.excluded.created_at,
        },
        where=keys.c.created_at < sa.bindparam("p_expired", type_=keys.c.created_at.type),
    ).returning(keys.c.key)


class SqlIdempotencyRepository:
    def __init__(self, connection: sa.Connection, tenant_id: str) -> None:
        self._db, self._tenant_id = connection, tenant_id

    def claim(
        self, claim: IdempotencyKey, created: Created, *, now: datetime, expired_before: datetime
    ) -> PriorCreate | None:
        row = {
            "tenant_id": self._tenant_id,
            "key": claim.key,
            "fingerprint": claim.fingerprint,
            "created": created.value,
            "resource_id": None,
            "created_at": now,
        }
        statement = _claim(self._db.dialect.name)
        if self._db.execute(statement, {**row, "p_expired": expired_before}).first() is not None:
            return None
        prior = (
            self._db.execute(
                keys.select().where(keys.c.tenant_id == self._tenant_id, keys.c.key == claim.key)
            )
            .mappings()
            .one()
        )
        return PriorCreate(
            key=prior["key"],
            fingerprint=prior["fingerprint"],
            created=Created(prior["created"]),
            resource_id=prior["resource_id"],
            created_at=aware(prior["created_at"]),
        )

    def made(self, key: str, resource_id: UUID) -> None:
        self._db.execute(
            keys.update()
            .where(keys.c.tenant_id == self._tenant_id, keys.c.key == key)
            .values(resource_id=resource_id)
        )
