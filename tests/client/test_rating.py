"""rate_task and get_rating, in both clients, against a scripted API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from meshclient import AsyncMesh, Conflict, Mesh, NotFound, Rating
from tests.client.fakes import API_KEY, BASE_URL, NETWORK_ID, TASK_ID, ScriptedApi, error

RATING_PATH = f"/api/mesh/networks/{NETWORK_ID}/tasks/{TASK_ID}/rating"


def rating(score: int, comment: str | None = None) -> Rating:
    return {
        "task_id": TASK_ID,
        "score": score,
        "comment": comment,
        "created_at": "2026-12-07T10:00:00+00:00",
        "updated_at": "2026-12-07T10:00:00+00:00",
    }


def mesh_for(api: ScriptedApi) -> Mesh:
    return Mesh(BASE_URL, API_KEY, transport=api.transport, sleep=lambda _: None)


def test_rate_task_posts_the_score_and_a_comment_only_when_given() -> None:
    api = ScriptedApi(
        httpx.Response(201, json=rating(2)), httpx.Response(200, json=rating(5, "Better"))
    )

    with mesh_for(api) as mesh:
        assert mesh.rate_task(NETWORK_ID, TASK_ID, 2) == rating(2)
        assert mesh.rate_task(NETWORK_ID, TASK_ID, 5, "Better") == rating(5, "Better")

    assert [(r.method, r.url.path) for r in api.requests] == [("POST", RATING_PATH)] * 2
    assert api.bodies() == [{"score": 2}, {"score": 5, "comment": "Better"}]


def test_a_rating_whose_answer_was_lost_is_sent_again() -> None:
    # Safe to repeat: the same rating again changes nothing.
    api = ScriptedApi(httpx.ReadTimeout("the answer was lost"), httpx.Response(200, json=rating(4)))

    with mesh_for(api) as mesh:
        assert mesh.rate_task(NETWORK_ID, TASK_ID, 4) == rating(4)

    assert len(api.requests) == 2


def test_rating_a_task_that_has_not_ended_raises_conflict() -> None:
    api = ScriptedApi(error(409, "task is running: only a finished task can be rated"))

    with mesh_for(api) as mesh, pytest.raises(Conflict):
        mesh.rate_task(NETWORK_ID, TASK_ID, 5)


def test_get_rating_reads_it_or_raises_not_found() -> None:
    api = ScriptedApi(httpx.Response(200, json=rating(3)), error(404, "rating not found"))

    with mesh_for(api) as mesh:
        assert mesh.get_rating(NETWORK_ID, TASK_ID) == rating(3)
        with pytest.raises(NotFound):
            mesh.get_rating(NETWORK_ID, TASK_ID)

    assert [(r.method, r.url.path) for r in api.requests] == [("GET", RATING_PATH)] * 2


def test_the_async_client_rates_and_reads_alike() -> None:
    api = ScriptedApi(
        httpx.Response(201, json=rating(1, "Wrong price")), httpx.Response(200, json=rating(1))
    )

    async def sleep(_: float) -> None:
        return None

    async def run() -> list[Rating]:
        async with AsyncMesh(BASE_URL, API_KEY, transport=api.transport, sleep=sleep) as mesh:
            rated = await mesh.rate_task(NETWORK_ID, TASK_ID, 1, "Wrong price")
            read = await mesh.get_rating(NETWORK_ID, TASK_ID)
            return [rated, read]

    assert asyncio.run(run()) == [rating(1, "Wrong price"), rating(1)]
    assert api.bodies() == [{"score": 1, "comment": "Wrong price"}, None]
