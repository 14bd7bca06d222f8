"""How confidence learns: damped, bounded moves, and the change each verdict records; no fakes."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from meshcore.domain.confidence import (
    CEILING,
    FLOOR,
    MAX_REASON,
    TICK,
    ConfidenceChange,
    ConfidenceSource,
    Reinforce,
    items_read,
    judged,
    reinforced,
    verdict_signal,
)
from meshcore.domain.errors import InvalidInput
from meshcore.domain.task import StepRecord, StepStatus

AT = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def test_a_pass_raises_confidence_and_a_fail_lowers_it() -> None:
    assert reinforced(0.5, 1.0) > 0.5
    assert reinforced(0.5, -1.0) < 0.5


def test_a_step_is_a_fifth_of_the_way_to_the_bound_scaled_by_the_signal() -> None:
    assert reinforced(0.5, 1.0) == pytest.approx(0.5 + 0.2 * (CEILING - 0.5))
    assert reinforced(0.5, 0.5) == pytest.approx(0.5 + 0.1 * (CEILING - 0.5))
    assert reinforced(0.5, -1.0) == pytest.approx(0.5 - 0.2 * (0.5 - FLOOR))


def test_one_verdict_cannot_swing_an_item_to_zero_or_one() -> None:
    assert reinforced(1.0, -1.0) > 0.75
    assert reinforced(0.0, 1.0) < 0.25


def test_a_hundred_passes_approach_the_ceiling_and_never_reach_one() -> None:
    confidence = 0.5
    for _ in range(100):
        confidence = reinforced(confidence, 1.0)

    assert CEILING - 1e-6 < confidence <= CEILING < 1.0


def test_a_hundred_fails_approach_the_floor_and_never_reach_zero() -> None:
    confidence = 0.5
    for _ in range(100):
        confidence = reinforced(confidence, -1.0)

    assert 0.0 < FLOOR <= confidence < FLOOR + 1e-6


def test_a_weaker_signal_moves_less() -> None:
    assert reinforced(0.5, 0.1) < reinforced(0.5, 0.9)
    assert reinforced(0.5, -0.1) > reinforced(0.5, -0.9)


def test_no_signal_moves_nothing() -> None:
    assert reinforced(0.42, 0.0) == 0.42


def test_praise_never_lowers_an_item_past_the_ceiling_nor_blame_raise_one_below_the_floor() -> None:
    assert reinforced(1.0, 1.0) == 1.0
    assert reinforced(0.0, -1.0) == 0.0


@pytest.mark.parametrize("signal", [1.01, -1.5, float("nan"), float("inf")])
def test_a_signal_outside_minus_one_to_one_is_refused(signal: float) -> None:
    with pytest.raises(InvalidInput, match="signal"):
        reinforced(0.5, signal)


def test_a_confidence_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(InvalidInput, match="confidence"):
        reinforced(1.2, 0.5)


def change(
    before: float,
    signal: float,
    *,
    reason: str = "the critic passed the answer",
    last_at: datetime | None = None,
) -> ConfidenceChange | None:
    return ConfidenceChange.of(
        uuid4(),
        before,
        Reinforce(signal),
        source=ConfidenceSource.CRITIC,
        reason=reason,
        task_id=None,
        at=AT,
        last_at=last_at,
    )


def test_a_verdict_makes_a_change_from_before_to_after() -> None:
    made = change(0.5, 1.0)

    assert made is not None
    assert (made.before, made.after, made.at) == (0.5, reinforced(0.5, 1.0), AT)
    assert (made.source, made.reason) == (ConfidenceSource.CRITIC, "the critic passed the answer")


def test_a_verdict_that_moves_nothing_makes_no_change() -> None:
    assert change(0.5, 0.0) is None
    assert change(1.0, 1.0) is None


def test_a_change_comes_after_the_items_last_even_if_the_clock_says_otherwise() -> None:
    later = datetime(2030, 1, 1, 9, 5, tzinfo=UTC)

    def at_after(last_at: datetime) -> datetime:
        made = change(0.5, 1.0, last_at=last_at)
        assert made is not None
        return made.at

    assert at_after(later) == later + TICK
    assert at_after(AT) == AT + TICK
    assert at_after(AT - TICK) == AT


def test_a_long_reason_is_cut_not_refused() -> None:
    made = change(0.5, -1.0, reason="r" * (MAX_REASON + 50))

    assert made is not None and made.reason == "r" * MAX_REASON


@pytest.mark.parametrize(
    ("score", "signal"), [(1.0, 1.0), (0.8, 0.8), (0.79, -0.21), (0.0, -1.0), (1.7, 1.0)]
)
def test_a_verdict_teaches_as_strongly_as_its_score_passes_or_falls_short(
    score: float, signal: float
) -> None:
    assert verdict_signal(score, 0.8) == pytest.approx(signal)


def test_the_items_steps_read_count_once_each_in_the_order_first_read() -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    steps = [
        StepRecord(task_id=uuid4(), iteration=1, key=key, agent_type="research",
                   queue="research", status=StepStatus.COMPLETED, output="", recorded_at=AT,
                   memory_read=tuple(str(i) for i in read))
        for key, read in (("facts", (a, b)), ("copy", (b, c)))
    ]  # fmt: skip

    assert items_read(steps) == [a, b, c]


@pytest.mark.parametrize(
    ("score", "confidence"), [(0.9, 0.9), (0.8, 0.8), (0.79, 0.395), (1.0, 0.95)]
)
def test_work_the_critic_passed_takes_its_score_and_rejected_work_half_of_it(
    score: float, confidence: float
) -> None:
    assert judged(score, 0.8).apply(0.75) == pytest.approx(confidence)
