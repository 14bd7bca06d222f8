"""meshapi.task_json at the edges: the hand-built bodies against the schemas' dump, and the
bytes orjson writes against what the json module wrote, for values a record rarely holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from meshapi.schemas.tasks import TaskProgressSchema, TaskSchema
from meshapi.task_json import dumps, progress_body, task_body
from meshcore.domain.network import AgentType
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.result import Contribution, TaskResult
from meshcore.domain.task import (
    EventKind,
    HistoryEntry,
    Priority,
    StepRecord,
    StepStatus,
    Subtask,
    Task,
    TaskStatus,
    TaskSummary,
    plan_entry,
    step_entry,
)
from meshcore.domain.usage import Usage

# Microseconds and an offset other than UTC, which orjson would write its own way.
AT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=5, minutes=30)))
ON_THE_SECOND = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
TEXT = 'Écris l\'e-mail — 日本語 🚀 "quoted" \\ \n\t'


def as_json(value: object) -> Any:
    return json.loads(json.dumps(value))


def bare_task(**fields: Any) -> Task:
    """A task with nothing optional: no result, error, subtasks or history."""
    values: dict[str, Any] = {
        "id": uuid4(),
        "tenant_id": "acme",
        "network_id": uuid4(),
        "description": TEXT,
        "context": {},
        "priority": Priority.LOW,
        "status": TaskStatus.QUEUED,
        "created_at": AT,
        "updated_at": ON_THE_SECOND,
        "deadline_at": AT + timedelta(microseconds=1),
        **fields,
    }
    return Task(**values)


def step(**fields: Any) -> StepRecord:
    values: dict[str, Any] = {
        "task_id": uuid4(),
        "iteration": 2,
        "key": "facts",
        "agent_type": AgentType.RESEARCH,
        "queue": "agent.research",
        "status": StepStatus.COMPLETED,
        "output": TEXT,
        "recorded_at": AT,
        **fields,
    }
    return StepRecord(**values)


def full_task() -> Task:
    facts = PlannedSubtask("facts", AgentType.RESEARCH, TEXT)
    copy = PlannedSubtask("copy", AgentType.CONTENT, "Write it", depends_on=("facts",))
    ran = step(
        model=None,
        usage=Usage(12, 3, 0),  # an int cost, shown as a number all the same
        latency_ms=1.3984569999934138,
        memory_read=("m-1", "m-2"),
        error="ünicode error",
        worker=None,
    )
    failed = step(key="copy", status=StepStatus.FAILED, output="", error=None, worker="w@host")
    return bare_task(
        context={"nested": {"list": [1, 2.5, None, True, TEXT]}, "empty": {}, "ratio": 1e-7},
        status=TaskStatus.FAILED,
        iteration=2,
        wave=1,
        revision=41,
        result=TaskResult(
            answer=TEXT,
            iteration=2,
            contributions=(Contribution("facts", "research", TEXT),),
            score=0.5,
            feedback=TEXT,
            partial=True,
        ),
        error="subtask copy failed",
        usage=Usage(10**12, 0, 1.25),
        subtasks=[
            Subtask(uuid4(), 1, 0, facts),  # pending: no step
            Subtask(uuid4(), 2, 0, facts, step=ran),
            Subtask(uuid4(), 2, 1, copy, step=failed),
        ],
        history=[
            HistoryEntry(AT, EventKind.TRANSITION, TaskStatus.QUEUED, detail={"from": None}, seq=1),
            plan_entry([(facts, 0), (copy, 1)], iteration=2, status=TaskStatus.RUNNING, now=AT),
            HistoryEntry(AT, EventKind.WAVE, TaskStatus.RUNNING, detail={"wave": 1}, seq=3),
            step_entry(ran, TaskStatus.RUNNING, now=ON_THE_SECOND),
            HistoryEntry(ON_THE_SECOND, "custom", TaskStatus.FAILED, agent="critic", seq=5),
        ],
    )


@pytest.mark.parametrize("task", [bare_task(), full_task()], ids=["bare", "full"])
def test_a_task_body_is_its_dump(task: Task) -> None:
    body = task_body(task)

    assert body == as_json(TaskSchema().dump(task))
    assert json.loads(dumps(body)) == as_json(TaskSchema().dump(task))


@pytest.mark.parametrize(
    "summary",
    [
        TaskSummary(uuid4(), uuid4(), TaskStatus.QUEUED, 1, 0, 0, 0, 0),
        TaskSummary(uuid4(), uuid4(), TaskStatus.COMPLETED, 9, 3, 2, 5, 5, TEXT, 0.86),
        TaskSummary(uuid4(), uuid4(), TaskStatus.REVIEWING, 9, 1, 0, 2, 3, None, 1),
    ],
    ids=["queued", "completed", "int-score"],
)
def test_a_progress_body_is_its_dump(summary: TaskSummary) -> None:
    body = progress_body(summary)

    assert body == as_json(TaskProgressSchema().dump(summary))
    assert json.loads(dumps(body)) == as_json(TaskProgressSchema().dump(summary))


def test_datetimes_read_as_isoformat_writes_them() -> None:
    body = task_body(full_task())

    assert body["created_at"] == "2030-01-02T03:04:05.678901+05:30"
    assert body["updated_at"] == "2030-01-02T03:04:05+00:00"
    assert body["deadline_at"] == "2030-01-02T03:04:05.678902+05:30"
    assert body["subtasks"][1]["step"]["recorded_at"] == "2030-01-02T03:04:05.678901+05:30"
    assert b'"updated_at":"2030-01-02T03:04:05+00:00"' in dumps(body)


def test_waves_read_from_one_and_latencies_to_a_tenth() -> None:
    body = task_body(full_task())

    assert [s["wave"] for s in body["subtasks"]] == [1, 1, 2]
    assert body["subtasks"][1]["step"]["latency_ms"] == 1.4
    plan, wave = body["history"][1]["detail"], body["history"][2]["detail"]
    assert [s["wave"] for s in plan["subtasks"]] == [1, 2] and wave["wave"] == 2
    assert full_task().history[2].detail == {"wave": 1}  # the record keeps its own


def test_the_bytes_are_utf8_json_not_escaped() -> None:
    sent = dumps(task_body(bare_task()))

    assert json.dumps(TEXT, ensure_ascii=False).encode() in sent
    assert json.loads(sent.decode("utf-8"))["description"] == TEXT


def test_an_integer_past_64_bits_is_still_encoded() -> None:
    task = bare_task(context={"id": 2**70, "n": -(2**64)})

    assert json.loads(dumps(task_body(task))) == as_json(TaskSchema().dump(task))


def test_the_result_reads_as_its_json_key_for_key() -> None:
    contribution = {"subtask": "facts", "agent": "research", "output": TEXT}

    assert task_body(full_task())["result"] == {
        "answer": TEXT,
        "iteration": 2,
        "contributions": [contribution],
        "score": 0.5,
        "feedback": TEXT,
        "partial": True,
    }
    assert task_body(bare_task())["result"] is None
