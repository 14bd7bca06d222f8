"""meshcli/client.py: the URL a user types, and what a finished task prints."""

from __future__ import annotations

import pytest

from meshcli.client import api_url, verdict


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("localhost:8600", "http://localhost:8600"),
        ("127.0.0.1:8600/", "http://127.0.0.1:8600"),
        ("http://localhost:8600", "http://localhost:8600"),
        ("https://mesh.example.com", "https://mesh.example.com"),
        ("mesh.example.com", "http://mesh.example.com"),
    ],
)
def test_api_url_accepts_a_url_without_a_scheme(typed: str, url: str) -> None:
    assert api_url(typed) == url


def test_verdict_shows_the_answer_score_feedback_and_url() -> None:
    task = {
        "status": "completed",
        "result": {"answer": "Hello", "score": 0.8234, "feedback": "Shorter subject line"},
    }

    assert verdict(task, "http://h/t/1").splitlines() == [
        "Hello",
        "",
        "score     0.82",
        "feedback  Shorter subject line",
        "task      http://h/t/1",
    ]


def test_verdict_of_a_failed_task_shows_its_error() -> None:
    task = {"status": "failed", "result": None, "error": "subtask content failed"}

    assert verdict(task, "http://h/t/1").splitlines()[0] == "subtask content failed"
