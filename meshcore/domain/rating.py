"""A client's rating of a finished task: a score from 1 to 5 and, if they wish, why.

A task has at most one rating, which its client may change. The rating is also a signal for
shared memory: what the task relied on was good (5) or bad (1), 3 saying nothing either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from meshcore.domain.errors import InvalidInput

MIN_SCORE, MAX_SCORE = 1, 5
NEUTRAL_SCORE = 3
MAX_COMMENT = 2000


@dataclass(frozen=True)
class Rating:
    task_id: UUID
    score: int
    comment: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def create(cls, task_id: UUID, score: int, comment: str | None, *, now: datetime) -> Rating:
        _check(score, comment)
        return cls(task_id, score, comment, now, now)

    def changed_to(self, score: int, comment: str | None, *, now: datetime) -> Rating:
        """The same rating with a new score and comment; unchanged (its time too) if both
        are what they were, so a retried request leaves no trace."""
        _check(score, comment)
        if (score, comment) == (self.score, self.comment):
            return self
        return replace(self, score=score, comment=comment, updated_at=now)

    @property
    def signal(self) -> float:
        """What the rating says of what the task relied on, in [-1, 1]: 1 -> -1, 3 -> 0,
        5 -> 1."""
        return signal_of(self.score)


def signal_of(score: int) -> float:
    return (score - NEUTRAL_SCORE) / (MAX_SCORE - NEUTRAL_SCORE)


def _check(score: int, comment: str | None) -> None:
    # bool is an int to Python, but `true` is no score.
    if isinstance(score, bool) or not isinstance(score, int):
        raise InvalidInput("score", f"must be a whole number from {MIN_SCORE} to {MAX_SCORE}")
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise InvalidInput("score", f"must be from {MIN_SCORE} to {MAX_SCORE}, not {score}")
    if comment is None:
        return
    if not comment.strip():
        raise InvalidInput("comment", "must not be empty or blank; leave it out instead")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("comment", f"must be at most {MAX_COMMENT} characters")
    if "\x00" in comment:
        raise InvalidInput("comment", "must not contain NUL characters")
