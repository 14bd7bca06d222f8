from __future__ import annotations

import pytest

from meshcore.agents import critic


def test_a_review_prompt_shows_the_answer_and_the_iteration() -> None:
    system, user = critic.review_messages(task="Launch Orbit", answer="Meet Orbit", iteration=2)

    assert "Answer format: verdict_json" in system.content
    assert "Iteration: 2" in user.content
    assert 'Answer to review:\n<data source="answer">\nMeet Orbit\n</data>' in user.content


@pytest.mark.parametrize(
    ("text", "score", "feedback"),
    [
        ('{"score": 0.7, "feedback": "Shorter."}', 0.7, "Shorter."),
        ('{"score": 1}', 1.0, ""),
        ('{"score": 0}', 0.0, ""),
        ('Verdict:\n```json\n{"score": 0.55, "feedback": "ok"}\n```', 0.55, "ok"),
    ],
)
def test_a_verdict_is_read_from_the_critics_answer(text: str, score: float, feedback: str) -> None:
    assert critic.read_verdict(text) == critic.Verdict(score, feedback)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Looks great!", "not JSON"),
        ("[0.7]", "must be a JSON object"),
        ('{"feedback": "no score"}', "a number between 0 and 1"),
        ('{"score": "0.7"}', "a number between 0 and 1"),
        ('{"score": true}', "a number between 0 and 1"),
        ('{"score": 1.2}', "a number between 0 and 1"),
        ('{"score": -0.1}', "a number between 0 and 1"),
        ('{"score": 0.5, "feedback": ["a", "b"]}', "feedback must be text"),
    ],
)
def test_an_answer_that_is_no_verdict_is_rejected(text: str, message: str) -> None:
    with pytest.raises(critic.InvalidVerdict, match=message):
        critic.read_verdict(text)
