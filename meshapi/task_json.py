"""A task's JSON for the hot read, GET .../tasks/<task>, built by hand and encoded with orjson.

Clients poll that read more than any other, and marshmallow's dump was a third of its CPU: it
builds nested schemas and copies fields on every call. These functions build the same value
as `TaskSchema().dump(task)` and `TaskProgressSchema().dump(summary)`, field for field, in
plain JSON types (datetimes as `isoformat()`, UUIDs as strings, enums by value, waves counted
from 1, latencies to a tenth), so orjson only sees what it encodes as the json module does.
The schemas in meshapi/schemas/tasks.py stay the contract: the OpenAPI document is made from
them, and tests/integration/api/test_task_json.py holds these bodies equal to their dump.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from meshapi.schemas.fields import shown_from_one
from meshcore.domain.task import HistoryEntry, StepRecord, Subtask, Task, TaskSummary
from meshcore.domain.usage import Usage

Body = dict[str, Any]


def task_body(task: Task) -> Body:
    """What `TaskSchema().dump(task)` gives: the task with its subtasks and history."""
    return {
        "id": str(task.id),
        "network_id": str(task.network_id),
        "description": _text(task.description),
        "context": _object(task.context),
        "priority": _value(task.priority),
        "status": _value(task.status),
        "iteration": _int(task.iteration),
        "revision": _int(task.revision),
        "result": None if task.result is None else task.result.to_json(),
        "error": _text(task.error),
        "usage": _usage(task.usage),
        "created_at": _time(task.created_at),
        "updated_at": _time(task.updated_at),
        "deadline_at": _time(task.deadline_at),
        "subtasks": [_subtask(s) for s in task.subtasks],
        "history": [_entry(h) for h in task.history],
    }


def progress_body(summary: TaskSummary) -> Body:
    """What `TaskProgressSchema().dump(summary)` gives: a poll's few fields."""
    return {
        "id": str(summary.id),
        "network_id": str(summary.network_id),
        "status": _value(summary.status),
        "revision": _int(summary.revision),
        "iteration": _int(summary.iteration),
        "wave": _ordinal(summary.wave),
        "progress": {"done": summary.steps_done, "planned": summary.steps_planned},
        "answer": _text(summary.answer),
        "score": _float(summary.score),
    }


def dumps(body: Body) -> bytes:
    """`body` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        # orjson refuses what the json module takes, such as an integer past 64 bits that a
        # client put in a context: such a body is rare, and still answered.
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _subtask(subtask: Subtask) -> Body:
    planned = subtask.planned
    return {
        "key": _text(subtask.key),
        "agent": _text(planned.agent_type),
        "description": _text(planned.description),
        "depends_on": [str(d) for d in planned.depends_on],
        "iteration": _int(subtask.iteration),
        "wave": _ordinal(subtask.wave),
        "status": _text(subtask.status),
        "step": None if subtask.step is None else _step(subtask.step),
    }


def _step(step: StepRecord) -> Body:
    return {
        "status": _text(step.status),
        "output": _text(step.output),
        "model": _text(step.model),
        "queue": _text(step.queue),
        "latency_ms": None if step.latency_ms is None else round(float(step.latency_ms), 1),
        "usage": _usage(step.usage),
        "memory_read": [str(m) for m in step.memory_read],
        "error": _text(step.error),
        "worker": _text(step.worker),
        "recorded_at": _time(step.recorded_at),
    }


def _entry(entry: HistoryEntry) -> Body:
    detail = entry.detail
    return {
        "seq": _int(entry.seq),
        "at": _time(entry.at),
        "kind": _text(entry.kind),
        "status": _text(entry.status),
        "agent": _text(entry.agent),
        "queue": _text(entry.queue),
        "detail": shown_from_one(detail) if isinstance(detail, dict) else _object(detail),
    }


def _usage(usage: Usage | None) -> Body | None:
    if usage is None:
        return None
    return {
        "input_tokens": _int(usage.input_tokens),
        "output_tokens": _int(usage.output_tokens),
        "cost_usd": _float(usage.cost_usd),
    }


# Each as the marshmallow field of the same kind serialises a value, None included.


def _text(value: object) -> str | None:
    """fields.String: a StrEnum reads as its value."""
    return None if value is None else str(value)


def _value(value: Any) -> Any:
    """fields.Enum(by_value=True)."""
    return None if value is None else value.value


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _ordinal(value: Any) -> Any:
    """schemas.fields.Ordinal: a wave the record counts from 0, shown from 1."""
    return value + 1 if isinstance(value, int) else value


def _time(value: datetime | None) -> str | None:
    """fields.DateTime: ISO 8601 as `isoformat()` writes it (offset, microseconds if any)."""
    return None if value is None else value.isoformat()


def _object(value: Mapping[str, Any] | None) -> Body | None:
    """fields.Dict: a shallow copy."""
    return None if value is None else dict(value)
