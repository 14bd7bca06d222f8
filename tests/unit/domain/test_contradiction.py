"""When two decisions contradict each other: the heuristic, and what it is known to miss."""

from __future__ import annotations

import pytest

from meshcore.domain.contradiction import Stance, contradicts, stance


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Send on Tuesday", Stance("send on tuesday", False)),
        ("Don't send on Tuesday", Stance("send on tuesday", True)),
        ("Do not send on Tuesday.", Stance("send on tuesday", True)),
        ("Never send on Tuesday", Stance("send on tuesday", True)),
        ("We do not send on Tuesday", Stance("we send on tuesday", True)),
        ("Orbit isn't free", Stance("orbit is free", True)),
        ("No discounts in May", Stance("discounts in may", True)),
        ("Not never send", Stance("send", False)),  # two negations cancel
        ("No.", Stance("", True)),
    ],
)
def test_a_stance_is_the_text_without_its_negations_and_their_parity(
    text: str, expected: Stance
) -> None:
    assert stance(text) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Send on Tuesday", "Don't send on Tuesday"),
        ("Send on Tuesday", "never send on tuesday!"),
        ("Orbit is free", "Orbit is not free"),
        ("Offer discounts in May", "Do not offer discounts in May"),
        ("Use emojis", "Avoid use emojis"),
    ],
)
def test_opposite_stances_on_one_subject_contradict(one: str, other: str) -> None:
    assert contradicts(one, other)
    assert contradicts(other, one)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Send on Tuesday", "Send on Tuesday"),  # the same stance: a restatement
        ("Don't send on Tuesday", "Never send on Tuesday"),  # both against it
        ("Send on Tuesday", "Don't send on Wednesday"),  # two subjects
        ("No.", "Yes."),  # nothing is left to be about
    ],
)
def test_the_same_stance_or_two_subjects_do_not_contradict(one: str, other: str) -> None:
    assert not contradicts(one, other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Avoid emojis", "Use emojis"),  # "use" is a word of the subject
        ("Send on Tuesdays", "Don't send on Tuesday"),  # no stemming
        ("Orbit is cheap", "Orbit is expensive"),  # antonyms are two subjects
        ("We shipped", "We did not ship"),  # tense is a word
    ],
)
def test_what_the_heuristic_misses(one: str, other: str) -> None:
    assert not contradicts(one, other)


def test_a_negation_for_emphasis_flips_it_wrongly() -> None:
    assert stance("No, never send on Tuesday").negated is False
    assert contradicts("No, never send on Tuesday", "Don't send on Tuesday")
