"""`mesh tasks approve` and `mesh tasks reject`: what they send and print."""

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


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """The requests the commands send to a scripted API."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = "running" if request.url.path.endswith("/approve") else "cancelled"
        return httpx.Response(202, json={"id": TASK_ID, "status": status})

    @contextmanager
    def session(api: Api) -> Iterator[Mesh]:
        with Mesh("http://mesh.test", "k", transport=httpx.MockTransport(answer)) as mesh:
            yield mesh

    monkeypatch.setattr(tasks_cli, "session", session)
    return seen


def invoke(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(
        tasks_cli.tasks, [*args, TASK_ID, "--network", NETWORK_ID, "--api-key", "k"], input=input
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_approve_sends_an_empty_body_and_prints_the_status(sent: list[httpx.Request]) -> None:
    assert invoke("approve") == f"task {TASK_ID} running\n"

    assert sent[0].url.path == f"/api/mesh/networks/{NETWORK_ID}/tasks/{TASK_ID}/approve"
    assert json.loads(sent[0].content) == {}


def test_approve_with_a_plan_sends_it(sent: list[httpx.Request]) -> None:
    plan = [{"key": "facts", "agent": "research", "description": "Find the facts"}]

    invoke("approve", "--plan", "-", input=json.dumps(plan))

    assert json.loads(sent[0].content) == {"plan": plan}


def test_a_plan_that_is_not_a_list_is_refused_before_sending(sent: list[httpx.Request]) -> None:
    result = CliRunner().invoke(
        tasks_cli.tasks,
        ["approve", TASK_ID, "--plan", "-", "--api-key", "k"],
        input='{"key": "facts"}',
    )

    assert result.exit_code == 2
    assert "must be a JSON list of subtasks" in result.output
    assert sent == []


def test_reject_sends_the_reason(sent: list[httpx.Request]) -> None:
    assert invoke("reject", "--reason", "Lead with the trial") == f"task {TASK_ID} cancelled\n"

    assert sent[0].url.path.endswith(f"/tasks/{TASK_ID}/reject")
    assert json.loads(sent[0].content) == {"reason": "Lead with the trial"}


def test_reject_needs_a_reason(sent: list[httpx.Request]) -> None:
    result = CliRunner().invoke(tasks_cli.tasks, ["reject", TASK_ID, "--api-key", "k"])

    assert result.exit_code == 2
    assert "--reason" in result.output
    assert sent == []
