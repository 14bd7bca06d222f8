"""A step's tool calls in the record: started before each call, finished after it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from meshcore.adapters.sql.repository import Repository
from meshcore.adapters.sql.tables import tool_calls
from meshcore.ports import ToolCallRecord, ToolCallStatus


class SqlToolCallRepository(Repository):
    def start(self, call: ToolCallRecord) -> tuple[ToolCallRecord, bool]:
        row = {
            "task_id": call.task_id,
            "iteration": call.iteration,
            "key": call.key,
            "number": call.number,
            "tenant_id": self._tenant_id,
            "server": call.server,
            "tool": call.tool,
            "arguments_hash": call.arguments_hash,
            "arguments": self._sealer.seal(json.dumps(call.arguments, sort_keys=True)),
            "status": call.status.value,
            "result": None,
            "is_error": False,
            "latency_ms": 0.0,
            "started_at": call.started_at,
            "finished_at": None,
        }
        inserted = self._insert_absent(tool_calls, [row])
        if inserted:
            return self._record(inserted[0]), True
        found = self._db.execute(
            tool_calls.select().where(*self._key(call.task_id, call.iteration, call.key),
                                      tool_calls.c.number == call.number)
        ).mappings().first()  # fmt: skip
        assert found is not None  # a conflict: it was already there
        return self._record(found), False

    def finish(
        self,
        call: ToolCallRecord,
        *,
        status: ToolCallStatus,
        result: str,
        is_error: bool,
        latency_ms: float,
        now: datetime,
    ) -> None:
        self._db.execute(
            tool_calls.update()
            .where(
                *self._key(call.task_id, call.iteration, call.key),
                tool_calls.c.number == call.number,
            )
            .values(
                status=status.value,
                result=self._sealer.seal(result),
                is_error=is_error,
                latency_ms=latency_ms,
                finished_at=now,
            )
        )

    def for_step(self, task_id: UUID, iteration: int, key: str) -> list[ToolCallRecord]:
        rows = self._db.execute(
            tool_calls.select()
            .where(*self._key(task_id, iteration, key))
            .order_by(tool_calls.c.number)
        ).mappings()
        return [self._record(r) for r in rows]

    def _key(self, task_id: UUID, iteration: int, key: str) -> list[sa.ColumnElement[bool]]:
        c = tool_calls.c
        return [
            c.tenant_id == self._tenant_id,
            c.task_id == task_id,
            c.iteration == iteration,
            c.key == key,
        ]

    def _record(self, row: Any) -> ToolCallRecord:
        return ToolCallRecord(
            task_id=row["task_id"],
            iteration=row["iteration"],
            key=row["key"],
            number=row["number"],
            server=row["server"],
            tool=row["tool"],
            arguments_hash=row["arguments_hash"],
            arguments=json.loads(self._sealer.open(row["arguments"])),
            status=ToolCallStatus(row["status"]),
            started_at=row["started_at"],
            result=self._sealer.open(row["result"]) if row["result"] is not None else None,
            is_error=row["is_error"],
            latency_ms=row["latency_ms"],
            finished_at=row["finished_at"],
        )
