"""A task's steps in the record, with their attempts' leases, and a step as a row: its output
and error sealed.

A recorded step also reads back joined to its subtask (task_rows.py), by STEP_COLUMNS.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.rows import Row, aware, labelled, unlabelled
from meshcore.adapters.sql.tables import step_attempts, steps
from meshcore.domain.task import StepRecord, StepStatus
from meshcore.domain.usage import Usage

p = sa.bindparam

STEP = steps.select().where(
    steps.c.task_id == p("p_task"),
    steps.c.iteration == p("p_iteration"),
    steps.c.key == p("p_key"),
    steps.c.tenant_id == p("p_tenant"),
)
_JOINED = "step_"
STEP_COLUMNS = labelled(steps, _JOINED)


@functools.cache
def begin_attempt(dialect: str) -> sa.Insert:
    """Count an attempt at a step and lease it, unless a lease taken after p_stale holds it."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(step_attempts)
    return insert.on_conflict_do_update(
        index_elements=["task_id", "iteration", "key"],
        set_={"attempts": step_attempts.c.attempts + 1, "started_at": insert.excluded.started_at},
        where=step_attempts.c.started_at < p("p_stale", type_=step_attempts.c.started_at.type),
    ).returning(step_attempts.c.attempts)


class SqlStepRepository(Repository):
    def begin_attempt(
        self, task_id: UUID, iteration: int, key: str, *, now: datetime, lease_seconds: float
    ) -> int | None:
        """Count an attempt at a step and lease it, or None while another attempt holds it."""
        row = {"task_id": task_id, "iteration": iteration, "key": key, "tenant_id": self._tenant_id}
        return self._db.execute(
            begin_attempt(self._db.dialect.name),
            {
                **row,
                "attempts": 1,
                "started_at": now,
                "p_stale": now - timedelta(seconds=lease_seconds),
            },
        ).scalar()

    def renew_lease(self, task_id: UUID, iteration: int, key: str, *, now: datetime) -> None:
        self._db.execute(
            step_attempts.update()
            .where(
                step_attempts.c.tenant_id == self._tenant_id,
                step_attempts.c.task_id == task_id,
                step_attempts.c.iteration == iteration,
                step_attempts.c.key == key,
            )
            .values(started_at=now)
        )

    def record(self, step: StepRecord) -> tuple[StepRecord, bool]:
        inserted = self._insert_absent(steps, [step_row(self._tenant_id, step, self._sealer)])
        if inserted:
            return step_from_row(inserted[0], self._sealer), True
        stored = self.get(step.task_id, step.iteration, step.key)
        assert stored is not None  # a conflict: it was already there
        return stored, False

    def get(self, task_id: UUID, iteration: int, key: str) -> StepRecord | None:
        params = {"p_task": task_id, "p_iteration": iteration, "p_key": key}
        row = self._db.execute(STEP, {**params, "p_tenant": self._tenant_id}).mappings().first()
        return step_from_row(row, self._sealer) if row else None

    def for_iteration(self, task_id: UUID, iteration: int) -> list[StepRecord]:
        rows = self._db.execute(
            steps.select()
            .where(
                steps.c.task_id == task_id,
                steps.c.iteration == iteration,
                steps.c.tenant_id == self._tenant_id,
            )
            .order_by(steps.c.recorded_at, steps.c.key)
        ).mappings()
        return [step_from_row(r, self._sealer) for r in rows]


def step_row(tenant_id: str, step: StepRecord, sealer: Sealer) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "task_id": step.task_id,
        "iteration": step.iteration,
        "key": step.key,
        "agent_type": str(step.agent_type),
        "agent_version": step.agent_version,
        "queue": step.queue,
        "status": step.status.value,
        "output": sealer.seal(step.output),
        "model": step.model,
        "input_tokens": step.usage.input_tokens,
        "output_tokens": step.usage.output_tokens,
        "cost_usd": step.usage.cost_usd,
        "latency_ms": step.latency_ms,
        "memory_read": list(step.memory_read),
        "error": sealer.seal(step.error) if step.error is not None else None,
        "worker": step.worker,
        "recorded_at": step.recorded_at,
        "traceparent": step.traceparent,
    }


def step_from_row(row: Row, sealer: Sealer) -> StepRecord:
    return StepRecord(
        task_id=row["task_id"],
        iteration=row["iteration"],
        key=row["key"],
        agent_type=row["agent_type"],
        agent_version=row["agent_version"],
        queue=row["queue"],
        status=StepStatus(row["status"]),
        output=sealer.open(row["output"]),
        recorded_at=aware(row["recorded_at"]),
        model=row["model"],
        usage=Usage(row["input_tokens"], row["output_tokens"], row["cost_usd"]),
        latency_ms=row["latency_ms"],
        memory_read=tuple(row["memory_read"]),
        error=sealer.open(row["error"]) if row["error"] is not None else None,
        worker=row["worker"],
        traceparent=row["traceparent"],
    )


def joined_step(row: Row, sealer: Sealer) -> StepRecord | None:
    """The step a row that selected STEP_COLUMNS carries; None where none is recorded."""
    if row[f"{_JOINED}status"] is None:
        return None
    return step_from_row(unlabelled(row, steps, _JOINED), sealer)
