"""AsyncMesh: the same behaviour as Mesh, as coroutines (run with asyncio.run)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from meshclient import AsyncMesh, Event, NotModified, RateLimited, Unauthorized, WaitTimeout
from tests.client.fakes import (
    API_KEY,
    BASE_URL,
    NETWORK_ID,
    TASK_ID,
    ScriptedApi,
    async_event_stream,
    error,
    sse_event,
    summary,
    task,
)


def mesh_for(api: ScriptedApi, sleeps: list[float]) -> AsyncMesh:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return AsyncMesh(BASE_URL, API_KEY, transport=api.transport, sleep=sleep)


def test_submit_reuses_its_idempotency_key_on_a_retry_after_a_503() -> None:
    api = ScriptedApi(
        error(503, "the database does not answer", **{"Retry-After": "3"}),
        httpx.Response(202, json=task()),
    )
    sleeps: list[float] = []

    async def run() -> dict[str, object]:
        async with mesh_for(api, sleeps) as mesh:
            return dict(await mesh.submit(NETWORK_ID, "Write the launch email"))

    submitted = asyncio.run(run())

    assert submitted["id"] == TASK_ID
    keys = {r.headers["Idempotency-Key"] for r in api.requests}
    assert len(api.requests) == 2 and len(keys) == 1
    assert sleeps == [3.0]


def test_errors_raise_the_exception_of_their_status_with_the_body() -> None:
    api = ScriptedApi(error(429, "rate limit of 6000 per minute", **{"Retry-After": "120"}))

    async def run() -> None:
        async with mesh_for(api, []) as mesh:
            await mesh.list_networks()

    with pytest.raises(RateLimited) as raised:
        asyncio.run(run())

    assert raised.value.body == {
        "code": 429,
        "status": "Error",
        "message": "rate limit of 6000 per minute",
        "errors": {},
    }
    assert raised.value.retry_after == 120.0


def test_a_stream_dropped_after_event_k_resumes_from_k_plus_1_without_a_repeat() -> None:
    first, second, third = (
        sse_event(1, "task.status", {"status": "running"}),
        sse_event(2, "step.started", {"subtask": "facts"}),
        sse_event(3, "task.cancelled", {"status": "cancelled"}),
    )
    api = ScriptedApi(
        async_event_stream(": heartbeat\n\n" + first + second, then=httpx.ReadError("reset")),
        async_event_stream(second + third),
    )
    sleeps: list[float] = []

    async def run() -> list[Event]:
        async with mesh_for(api, sleeps) as mesh:
            return [event async for event in mesh.events(NETWORK_ID, TASK_ID)]

    events = asyncio.run(run())

    assert [(e.id, e.type) for e in events] == [
        (1, "task.status"),
        (2, "step.started"),
        (3, "task.cancelled"),
    ]
    assert api.requests[1].headers["Last-Event-ID"] == "2"
    assert len(sleeps) == 1


def test_a_stream_resumed_after_the_final_event_ends_at_once_without_an_event() -> None:
    api = ScriptedApi(async_event_stream("retry: 1000\n\n"), summary("completed", 3))
    sleeps: list[float] = []

    async def run() -> list[Event]:
        async with mesh_for(api, sleeps) as mesh:
            return [e async for e in mesh.events(NETWORK_ID, TASK_ID, last_event_id=3)]

    assert asyncio.run(run()) == []
    assert sleeps == []
    assert len(api.requests) == 2


def test_submit_with_wait_returns_the_final_task() -> None:
    final = task("completed", 4, result={"answer": "Dear developer...", "score": 0.9})
    api = ScriptedApi(
        httpx.Response(202, json=task()),
        summary("running", 2),
        httpx.Response(304, headers={"ETag": '"2"'}),
        summary("completed", 4),
        httpx.Response(200, json=final),
    )

    async def run() -> dict[str, object]:
        async with mesh_for(api, []) as mesh:
            return dict(await mesh.submit(NETWORK_ID, "Write it", wait=True, timeout=60))

    assert asyncio.run(run()) == final
    assert [r.headers.get("If-None-Match") for r in api.requests[2:4]] == ['"2"', '"2"']


def test_a_wait_that_runs_out_raises_a_timeout_error() -> None:
    api = ScriptedApi(summary("planning", 1))

    async def run() -> None:
        async with mesh_for(api, []) as mesh:
            await mesh.wait_for(NETWORK_ID, TASK_ID, timeout=0)

    with pytest.raises(WaitTimeout):
        asyncio.run(run())


def test_a_task_unchanged_since_a_revision_answers_not_modified() -> None:
    api = ScriptedApi(httpx.Response(304, headers={"ETag": '"12"'}))

    async def run() -> object:
        async with mesh_for(api, []) as mesh:
            return await mesh.get_task(NETWORK_ID, TASK_ID, if_none_match='"12"', wait=1)

    assert asyncio.run(run()) == NotModified(revision=12, etag='"12"')
    assert api.requests[0].headers["If-None-Match"] == '"12"'


def test_the_api_key_never_shows_in_a_repr_or_an_exception() -> None:
    api = ScriptedApi(error(401, f"unknown key {API_KEY}"))
    mesh = mesh_for(api, [])

    async def run() -> None:
        async with mesh:
            await mesh.get_network(NETWORK_ID)

    with pytest.raises(Unauthorized) as raised:
        asyncio.run(run())

    for text in (repr(mesh), str(raised.value), repr(raised.value), repr(raised.value.body)):
        assert API_KEY not in text
