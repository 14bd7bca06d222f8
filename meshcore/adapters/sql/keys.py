"""The API keys in the record (the KeyStore port); each call is its own short transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.rows import Row, aware, maybe_aware
from meshcore.adapters.sql.tables import api_keys
from meshcore.adapters.sql.uow import UNAVAILABLE, unavailable
from meshcore.domain.errors import NotFound
from meshcore.domain.keys import ApiKey, parse_scopes


class SqlKeyStore:
    def __init__(self, engine: sa.Engine) -> None:
        # A key is looked up by its id before its tenant is known, and `mesh keys list`
        # lists every tenant's: the one store that reads across tenants (tenancy.py).
        tenancy.install(engine)
        self._engine = tenancy.across_tenants(engine)

    def add(self, key: ApiKey, digest: str) -> None:
        with self._begin() as db:
            db.execute(api_keys.insert().values(key_row(key, digest)))

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        with self._begin() as db:
            row = db.execute(api_keys.select().where(api_keys.c.id == key_id)).mappings().first()
        return None if row is None else (key_from_row(row), row["digest"])

    def list(self, tenant_id: str | None) -> list[ApiKey]:
        query = api_keys.select().order_by(api_keys.c.created_at, api_keys.c.id)
        if tenant_id is not None:
            query = query.where(api_keys.c.tenant_id == tenant_id)
        with self._begin() as db:
            return [key_from_row(r) for r in db.execute(query).mappings()]

    def revoke(self, key_id: str, tenant_id: str | None, now: datetime) -> ApiKey:
        mine = [api_keys.c.id == key_id]
        if tenant_id is not None:
            mine.append(api_keys.c.tenant_id == tenant_id)
        with self._begin() as db:
            db.execute(
                api_keys.update()
                .where(*mine, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = db.execute(api_keys.select().where(*mine)).mappings().first()
        if row is None:
            raise NotFound("key", key_id)
        return key_from_row(row)

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        try:
            with self._engine.begin() as db:
                yield db
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc


# An API key as a row: its scopes as one string, and the digest of its secret beside it,
# never the secret.
def key_row(key: ApiKey, digest: str) -> dict[str, object]:
    return {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "scopes": ",".join(sorted(key.scopes)),
        "digest": digest,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def key_from_row(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        scopes=parse_scopes(row["scopes"]),
        created_at=aware(row["created_at"]),
        revoked_at=maybe_aware(row["revoked_at"]),
    )
