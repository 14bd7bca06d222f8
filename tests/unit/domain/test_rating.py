"""A rating: a score from 1 to 5 and an optional comment, checked; what it says to memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from meshcore.domain.errors import InvalidInput
from meshcore.domain.rating import MAX_COMMENT, Rating, signal_of

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def test_a_new_rating_holds_its_score_and_comment_made_and_changed_now() -> None:
    task_id = uuid4()

    rating = Rating.create(task_id, 4, "Clear", now=NOW)

    assert rating == Rating(task_id, 4, "Clear", NOW, NOW)


@pytest.mark.parametrize("score", [0, 6, -1, True, 4.0, "4"])
def test_a_score_that_is_not_a_whole_number_from_1_to_5_is_refused(score: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        Rating.create(uuid4(), score, None, now=NOW)  # type: ignore[arg-type]

    assert refused.value.field == "score"


@pytest.mark.parametrize("comment", ["", "   ", "x" * (MAX_COMMENT + 1), "a\x00b"])
def test_a_blank_oversized_or_nul_bearing_comment_is_refused(comment: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Rating.create(uuid4(), 3, comment, now=NOW)

    assert refused.value.field == "comment"


def test_a_changed_rating_keeps_when_it_was_first_made() -> None:
    rating = Rating.create(uuid4(), 1, "Wrong price", now=NOW)

    changed = rating.changed_to(5, None, now=LATER)

    assert (changed.score, changed.comment) == (5, None)
    assert (changed.created_at, changed.updated_at) == (NOW, LATER)


def test_the_same_rating_again_is_no_change_at_all() -> None:
    rating = Rating.create(uuid4(), 4, "Good", now=NOW)

    assert rating.changed_to(4, "Good", now=LATER) is rating


def test_a_new_comment_alone_is_a_change() -> None:
    rating = Rating.create(uuid4(), 4, "Good", now=NOW)

    assert rating.changed_to(4, "Very good", now=LATER).updated_at == LATER


def test_a_change_is_checked_as_a_new_rating_is() -> None:
    rating = Rating.create(uuid4(), 4, None, now=NOW)

    with pytest.raises(InvalidInput):
        rating.changed_to(9, None, now=LATER)


def test_the_signal_runs_from_minus_one_for_a_1_to_one_for_a_5() -> None:
    assert [signal_of(score) for score in range(1, 6)] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert Rating.create(uuid4(), 5, None, now=NOW).signal == 1.0
