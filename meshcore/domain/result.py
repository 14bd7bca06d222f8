"""A task's result: the answer of its last synthesis, the critic's verdict on it, and the
specialists' contributions it merged.

Only the workflow makes one (workflow.result_of and workflow.kept_result, and the methods
here that a verdict or an early end apply); nothing patches one by hand. Its JSON is what the
API shows and the record stores, the same object results were when they were plain dicts: a
key is written only when it has a value (no `answer` before a synthesis, no `score` before a
verdict, `partial` only when true), so every row written before reads back, and writes
again, as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Contribution:
    """One specialist's work a synthesis merged: its subtask's key, agent type and output."""

    subtask: str
    agent: str
    output: str

    def to_json(self) -> dict[str, object]:
        return {"subtask": self.subtask, "agent": self.agent, "output": self.output}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Contribution:
        return cls(subtask=data["subtask"], agent=data["agent"], output=data["output"])


@dataclass(frozen=True)
class TaskResult:
    """What a task gives back: made by the workflow, read by the API, webhooks and polls."""

    answer: str | None = None  # the synthesis; None if the task ended before one
    iteration: int | None = None  # the iteration that synthesised `answer`
    # None (the key absent) only for a result no synthesis or ending has made: such a row
    # reads and writes back without a `contributions` key, as it was stored.
    contributions: tuple[Contribution, ...] | None = None
    score: float | None = None  # the critic's verdict on `answer`, once it has reviewed it
    feedback: str | None = None
    partial: bool = False  # ended early (failed, cancelled, timed out) with what it had

    def with_review(self, score: float, feedback: str) -> TaskResult:
        """This result with the critic's verdict on its answer."""
        return replace(self, score=score, feedback=feedback)

    def kept_partial(self, completed: Iterable[Contribution]) -> TaskResult:
        """This result as a task that ended early keeps it: its answer and verdict, if any,
        with the contributions its current iteration completed in place of the merged ones."""
        return replace(self, contributions=tuple(completed), partial=True)

    def to_json(self) -> dict[str, object]:
        """The result's JSON, key for key what the record and the API have always held."""
        data: dict[str, object] = {}
        if self.answer is not None:
            data["answer"] = self.answer
        if self.iteration is not None:
            data["iteration"] = self.iteration
        if self.contributions is not None:
            data["contributions"] = [c.to_json() for c in self.contributions]
        if self.score is not None:
            data["score"] = self.score
        if self.feedback is not None:
            data["feedback"] = self.feedback
        if self.partial:
            data["partial"] = True
        return data

    @classmethod
    def from_json(cls, data: object) -> TaskResult | None:
        """The result a stored or sent JSON object holds (None for none), from any row Mesh
        has written: results were plain dicts of the same keys before they had a type."""
        if not isinstance(data, Mapping):
            return None
        contributions = data.get("contributions")
        return cls(
            answer=data.get("answer"),
            iteration=data.get("iteration"),
            contributions=(
                tuple(Contribution.from_json(c) for c in contributions)
                if contributions is not None
                else None
            ),
            score=data.get("score"),
            feedback=data.get("feedback"),
            partial=data.get("partial") is True,
        )
