"""A task's result and its JSON: the record's rows and the API's bodies, as results were written
when they were plain dicts; no fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from meshcore.domain import workflow
from meshcore.domain.result import Contribution, TaskResult
from meshcore.domain.task import StepRecord, StepStatus

FACTS = {"subtask": "facts", "agent": "research", "output": "the facts"}
COPY = {"subtask": "copy", "agent": "content", "output": "the copy"}

# Each shape the workflow wrote as a dict, keys in the order it wrote them.
SYNTHESISED = {"answer": "the answer", "iteration": 1, "contributions": [FACTS, COPY]}
REVIEWED = {**SYNTHESISED, "score": 0.6, "feedback": "add a call to action"}
ENDED_BEFORE_AN_ANSWER = {"partial": True, "contributions": [FACTS]}
ENDED_WHILE_REVIEWED = {**SYNTHESISED, "partial": True}
ENDED_IN_A_REVISION = {**REVIEWED, "contributions": [FACTS], "partial": True}
OLD_ROWS = {
    "synthesised": SYNTHESISED,
    "reviewed": REVIEWED,
    "ended before an answer": ENDED_BEFORE_AN_ANSWER,
    "ended while reviewed": ENDED_WHILE_REVIEWED,
    "ended in a revision": ENDED_IN_A_REVISION,
    "ended with nothing done": {"partial": True, "contributions": []},
    "a verdict alone": {"score": 0.5, "feedback": "why"},
    "an answer alone": {"answer": "written before sealing"},
    "an integer score": {**SYNTHESISED, "score": 1, "feedback": ""},
}


def step(key: str, status: StepStatus = StepStatus.COMPLETED) -> StepRecord:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    return StepRecord(uuid4(), 1, key, "research", "agent.research", status, f"{key} out", at)


@pytest.mark.parametrize("stored", OLD_ROWS.values(), ids=OLD_ROWS.keys())
def test_a_row_written_as_a_dict_reads_and_writes_back_key_for_key(stored: dict) -> None:
    read = TaskResult.from_json(json.loads(json.dumps(stored)))

    assert read is not None
    assert read.to_json() == stored
    assert sorted(read.to_json()) == sorted(stored)  # no key added, none dropped
    assert TaskResult.from_json(json.loads(json.dumps(read.to_json()))) == read


def test_an_old_row_reads_as_typed_values() -> None:
    read = TaskResult.from_json(ENDED_IN_A_REVISION)

    assert read == TaskResult(
        answer="the answer",
        iteration=1,
        contributions=(Contribution("facts", "research", "the facts"),),
        score=0.6,
        feedback="add a call to action",
        partial=True,
    )


def test_a_partial_result_says_so_and_a_whole_one_has_no_partial_key() -> None:
    partial = TaskResult.from_json(ENDED_BEFORE_AN_ANSWER)
    whole = TaskResult.from_json(SYNTHESISED)

    assert partial is not None and whole is not None
    assert (partial.partial, partial.answer, partial.score) == (True, None, None)
    assert partial.to_json() == {"contributions": [FACTS], "partial": True}
    assert whole.partial is False and "partial" not in whole.to_json()


def test_no_stored_result_reads_as_none() -> None:
    assert TaskResult.from_json(None) is None


def test_the_workflow_writes_the_keys_it_wrote_as_dicts() -> None:
    steps = [step("a"), step("b", StepStatus.FAILED)]

    synthesised = workflow.result_of(
        answer="the answer", iteration=2, merged=workflow.contributions(steps)
    )
    reviewed = synthesised.with_review(0.7, "tighter")
    ended = workflow.kept_result(reviewed, [*steps, step("@synthesis")])
    ended_early = workflow.kept_result(None, steps)

    a = {"subtask": "a", "agent": "research", "output": "a out"}
    b = {"subtask": "b", "agent": "research", "output": "b out"}
    assert synthesised.to_json() == {
        "answer": "the answer",
        "iteration": 2,
        "contributions": [a, b],
    }
    assert reviewed.to_json() == {
        "answer": "the answer",
        "iteration": 2,
        "contributions": [a, b],
        "score": 0.7,
        "feedback": "tighter",
    }
    assert ended.to_json() == {**reviewed.to_json(), "contributions": [a], "partial": True}
    assert ended_early.to_json() == {"contributions": [a], "partial": True}


def test_a_result_is_a_value_its_methods_copy() -> None:
    made = TaskResult(answer="x", iteration=1, contributions=())

    reviewed = made.with_review(0.9, "good")

    assert made.score is None and reviewed.score == 0.9
    with pytest.raises(AttributeError):
        made.answer = "changed"  # type: ignore[misc]
