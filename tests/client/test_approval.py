"""approve and reject, in both clients, against a scripted API."""

from __future__ import annotations

import asyncio
import typing

import httpx
import pytest

from meshclient import AsyncMesh, Conflict, Mesh, PlannedSubtask, TaskStatus
from tests.client.fakes import API_KEY, BASE_URL, NETWORK_ID, TASK_ID, ScriptedApi, error, task

PLAN: list[PlannedSubtask] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "email", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
]
TASK_PATH = f"/api/mesh/networks/{NETWORK_ID}/tasks/{TASK_ID}"


def mesh_for(api: ScriptedApi) -> Mesh:
    return Mesh(BASE_URL, API_KEY, transport=api.transport, sleep=lambda _: None)


def test_the_status_literal_knows_awaiting_approval() -> None:
    assert "awaiting_approval" in typing.get_args(TaskStatus)


def test_approve_posts_an_empty_body_or_the_edited_plan() -> None:
    api = ScriptedApi(httpx.Response(202, json=task("running")), httpx.Response(202, json=task()))

    with mesh_for(api) as mesh:
        assert mesh.approve(NETWORK_ID, TASK_ID)["status"] == "running"
        mesh.approve(NETWORK_ID, TASK_ID, PLAN)

    assert [(r.method, r.url.path) for r in api.requests] == [("POST", f"{TASK_PATH}/approve")] * 2
    assert api.bodies() == [{}, {"plan": PLAN}]


def test_reject_posts_the_reason() -> None:
    api = ScriptedApi(httpx.Response(202, json=task("cancelled")))

    with mesh_for(api) as mesh:
        assert mesh.reject(NETWORK_ID, TASK_ID, "Lead with the trial")["status"] == "cancelled"

    assert api.requests[0].url.path == f"{TASK_PATH}/reject"
    assert api.bodies() == [{"reason": "Lead with the trial"}]


def test_an_approval_whose_retry_answers_409_returns_the_task_it_approved() -> None:
    running = task("running", 6)
    api = ScriptedApi(
        httpx.ReadTimeout("the answer was lost"),
        error(409, "task is running; only a task awaiting approval of its plan can be approved"),
        httpx.Response(200, json=running),
    )

    with mesh_for(api) as mesh:
        assert mesh.approve(NETWORK_ID, TASK_ID) == running

    assert [r.url.path.rsplit("/", 1)[-1] for r in api.requests] == ["approve", "approve", TASK_ID]


def test_a_reject_refused_on_its_first_attempt_raises_conflict() -> None:
    api = ScriptedApi(error(409, "task is running"))

    with mesh_for(api) as mesh, pytest.raises(Conflict):
        mesh.reject(NETWORK_ID, TASK_ID, "too late")


def test_the_async_client_approves_and_rejects_alike() -> None:
    api = ScriptedApi(
        httpx.Response(202, json=task("running")), httpx.Response(202, json=task("cancelled"))
    )

    async def sleep(_: float) -> None:
        return None

    async def run() -> list[str]:
        async with AsyncMesh(BASE_URL, API_KEY, transport=api.transport, sleep=sleep) as mesh:
            approved = await mesh.approve(NETWORK_ID, TASK_ID, PLAN)
            rejected = await mesh.reject(NETWORK_ID, TASK_ID, "no")
            return [approved["status"], rejected["status"]]

    assert asyncio.run(run()) == ["running", "cancelled"]
    assert api.bodies() == [{"plan": PLAN}, {"reason": "no"}]
