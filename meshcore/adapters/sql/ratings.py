"""Clients' ratings of their tasks in the record, a row a task: its comment sealed (the
client's words are content like any other)."""

from __future__ import annotations

import functools
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.rows import Row, aware
from meshcore.adapters.sql.tables import task_ratings
from meshcore.domain.rating import Rating


@functools.cache
def upsert(dialect: str) -> sa.Insert:
    """Insert a task's rating, or put it in place of the one the task has (its first time
    kept)."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(task_ratings)
    return insert.on_conflict_do_update(
        index_elements=["task_id"],
        set_={
            "score": insert.excluded.score,
            "comment": insert.excluded.comment,
            "updated_at": insert.excluded.updated_at,
        },
    )


class SqlRatingRepository(Repository):
    def get(self, task_id: UUID) -> Rating | None:
        row = (
            self._db.execute(
                task_ratings.select().where(
                    task_ratings.c.task_id == task_id,
                    task_ratings.c.tenant_id == self._tenant_id,
                )
            )
            .mappings()
            .first()
        )
        return rating_from_row(row, self._sealer) if row is not None else None

    def put(self, rating: Rating) -> None:
        self._db.execute(
            upsert(self._db.dialect.name), rating_row(self._tenant_id, rating, self._sealer)
        )


def rating_row(tenant_id: str, rating: Rating, sealer: Sealer) -> dict[str, object]:
    return {
        "task_id": rating.task_id,
        "tenant_id": tenant_id,
        "score": rating.score,
        "comment": sealer.seal(rating.comment) if rating.comment is not None else None,
        "created_at": rating.created_at,
        "updated_at": rating.updated_at,
    }


def rating_from_row(row: Row, sealer: Sealer) -> Rating:
    return Rating(
        task_id=row["task_id"],
        score=row["score"],
        comment=sealer.open(row["comment"]) if row["comment"] is not None else None,
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )
