"""How a memory item's confidence learns from verdicts on the work that used it.

A verdict (a critic's pass or fail, a client's rating, a merge of duplicates) is a signal in
[-1, 1]. It moves the confidence a damped step toward a ceiling (signal > 0) or a floor
(signal < 0), never past either: one harsh verdict cannot erase an item, and no run of
praise makes it certain. Every move is kept as a ConfidenceChange, so an item's history
explains the confidence it has.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from meshcore.domain.errors import InvalidInput
from meshcore.domain.task import StepRecord

FLOOR = 0.05
CEILING = 0.95
# The share of the distance to the bound that a full-strength verdict covers.
RATE = 0.2
# Reasons are Mesh's own words (a verdict's summary); a long one is cut, not refused, so a
# verdict is never lost to its explanation.
MAX_REASON = 500
# Changes of one item are ordered by `at`; two in the same instant (or a worker whose clock
# is behind) are set this far apart, so the order of the record is the order they were made.
TICK = timedelta(microseconds=1)


class ConfidenceSource(enum.StrEnum):
    CRITIC = "critic"
    RATING = "rating"
    MERGE = "merge"


@dataclass(frozen=True)
class ConfidenceChange:
    id: UUID
    item_id: UUID
    task_id: UUID | None
    source: ConfidenceSource
    reason: str
    before: float
    after: float
    at: datetime

    @classmethod
    def of(
        cls,
        item_id: UUID,
        before: float,
        move: Move,
        *,
        source: ConfidenceSource,
        reason: str,
        task_id: UUID | None,
        at: datetime,
        last_at: datetime | None = None,
    ) -> ConfidenceChange | None:
        """The change `move` makes to an item at `before`; None if it moves nothing.

        `last_at` is when the item's previous change was recorded: this one comes after it.
        """
        after = move.apply(before)
        if after == before:
            return None
        if last_at is not None and at <= last_at:
            at = last_at + TICK
        return cls(uuid4(), item_id, task_id, source, reason[:MAX_REASON], before, after, at)


@dataclass(frozen=True)
class Reinforce:
    """A verdict on work that used the item: a damped step toward a bound (`reinforced`)."""

    signal: float

    def __post_init__(self) -> None:
        check_signal(self.signal)

    def apply(self, confidence: float) -> float:
        return reinforced(confidence, self.signal)


@dataclass(frozen=True)
class Assess:
    """The first judgement of an item by its source, in place of the confidence it was
    written with: the critic's score of the step that produced it. Kept within the bounds,
    as a verdict is, so one judgement cannot make an item certain or erase it."""

    value: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and 0.0 <= self.value <= 1.0):
            raise InvalidInput("confidence", "must be between 0 and 1")

    def apply(self, confidence: float) -> float:
        return min(CEILING, max(FLOOR, self.value))


Move = Reinforce | Assess


def reinforced(confidence: float, signal: float) -> float:
    """`confidence` moved by a verdict of strength `signal` in [-1, 1].

    The step is RATE x |signal| of the distance to CEILING (signal > 0) or FLOOR (signal < 0),
    so each verdict counts for less as the item nears a bound and the bound is never passed.
    A confidence already past the bound it is pushed toward (a client wrote 1.0) stays put:
    praise never lowers an item, nor blame raise it.
    """
    check_signal(signal)
    if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        raise InvalidInput("confidence", "must be between 0 and 1")
    if signal > 0 and confidence < CEILING:
        return min(CEILING, confidence + RATE * signal * (CEILING - confidence))
    if signal < 0 and confidence > FLOOR:
        return max(FLOOR, confidence + RATE * signal * (confidence - FLOOR))
    return confidence


def verdict_signal(score: float, threshold: float) -> float:
    """What a critic's verdict teaches the items its work read: a pass (`score` at or above
    the network's `threshold`) as strong as the score, a fail as strong as the score's
    shortfall from 1, so a near miss costs little and a rout a lot."""
    score = min(1.0, max(0.0, score))
    return score if score >= threshold else -(1.0 - score)


def judged(score: float, threshold: float) -> Assess:
    """The confidence of work the critic scored: its score if it passed; half its score if
    it was rejected, which holds it below the agents' reading floor (0.5 by default), so
    later work builds on the revision the critic passed and not on the draft it rejected."""
    score = min(1.0, max(0.0, score))
    return Assess(score if score >= threshold else score / 2)


def items_read(steps: Iterable[StepRecord]) -> list[UUID]:
    """The memory items some steps read (as they recorded them), each once, in order."""
    return list(dict.fromkeys(UUID(i) for step in steps for i in step.memory_read))


def check_signal(signal: float) -> None:
    if not (math.isfinite(signal) and -1.0 <= signal <= 1.0):
        raise InvalidInput("signal", "must be between -1 and 1")


@dataclass(frozen=True)
class ConfidenceHistory:
    """An item's confidence now, and every change that led to it, oldest first."""

    item_id: UUID
    confidence: float
    changes: list[ConfidenceChange]
