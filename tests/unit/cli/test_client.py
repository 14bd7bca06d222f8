"""meshcli/client.py: the URL a user types, what a finished task prints, and key hints."""

from __future__ import annotations

import pytest

from meshcli.client import api_url, key_hint, verdict


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


def test_a_401_without_a_key_says_how_to_pass_one() -> None:
    hint = key_hint(401, has_key=False)

    assert hint is not None
    assert "--api-key" in hint and "MESH_API_KEY" in hint


def test_a_refused_key_or_scope_says_what_to_do() -> None:
    refused, scope = key_hint(401, has_key=True), key_hint(403, has_key=True)

    assert refused is not None and "mesh keys create" in refused
    assert scope is not None and "read and write scopes" in scope


def test_other_errors_get_no_key_hint() -> None:
    assert key_hint(404, has_key=True) is None
    assert key_hint(None, has_key=False) is None
