"""`mesh tasks rate`: what it sends and prints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from click.testing import CliRunner

from meshcli import tasks as tasks_cli
from meshcli.client import Api
from meshclient import Mesh

NETWORK_ID = "3f1d2c4b-0000-4000-8000-000000000001"
TASK_ID = "3f1d2c4b-0000-4000-8000-0000000000aa"
WHEN = "2026-12-07T10:00:00+00:00"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """The requests the command sends to a scripted API, which answers the rating sent."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        rating = {
            "task_id": TASK_ID,
            "score": body["score"],
            "comment": body.get("comment"),
            "created_at": WHEN,
            "updated_at": WHEN,
        }
        return httpx.Response(201, json=rating)

    @contextmanager
    def session(api: Api) -> Iterator[Mesh]:
        with Mesh("http://mesh.test", "k", transport=httpx.MockTransport(answer)) as mesh:
            yield mesh

    monkeypatch.setattr(tasks_cli, "session", session)
    return seen


def invoke(*args: str) -> str:
    result = CliRunner().invoke(
        tasks_cli.tasks, ["rate", TASK_ID, *args, "--network", NETWORK_ID, "--api-key", "k"]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_rate_sends_the_score_and_prints_it(sent: list[httpx.Request]) -> None:
    assert invoke("4") == f"task {TASK_ID} rated 4/5\n"

    assert sent[0].method == "POST"
    assert sent[0].url.path == f"/api/mesh/networks/{NETWORK_ID}/tasks/{TASK_ID}/rating"
    assert json.loads(sent[0].content) == {"score": 4}


def test_rate_with_a_comment_sends_it(sent: list[httpx.Request]) -> None:
    printed = invoke("1", "--comment", "Wrong price")

    assert printed == f"task {TASK_ID} rated 1/5: Wrong price\n"
    assert json.loads(sent[0].content) == {"score": 1, "comment": "Wrong price"}


def test_rate_prints_json_on_request(sent: list[httpx.Request]) -> None:
    rating = json.loads(invoke("5", "--json"))

    assert (rating["task_id"], rating["score"], rating["comment"]) == (TASK_ID, 5, None)


@pytest.mark.parametrize("score", ["0", "6", "4.5", "five"])
def test_a_score_outside_1_to_5_is_refused_before_sending(
    sent: list[httpx.Request], score: str
) -> None:
    result = CliRunner().invoke(tasks_cli.tasks, ["rate", TASK_ID, score, "--api-key", "k"])

    assert result.exit_code == 2
    assert "SCORE" in result.output
    assert sent == []
