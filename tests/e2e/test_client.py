"""meshclient against a real `mesh serve` (embedded, offline model): the calls its README
promises, over HTTP, with the workers running the tasks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest

from meshclient import AsyncMesh, Conflict, Event, Mesh, NotModified, Unauthorized
from tests.e2e.server import DEV_KEY, mesh_serve

pytestmark = [pytest.mark.e2e, pytest.mark.clients]

# Each model call of the offline model takes this long, so a task runs for a few seconds:
# long enough to drop its stream or cancel it halfway.
LATENCY_MS = "150"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("serve")
    with mesh_serve(data, offline_latency_ms=LATENCY_MS, output=data / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def mesh(base: str) -> Iterator[Mesh]:
    with Mesh(base, DEV_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def network_id(mesh: Mesh) -> str:
    """A network whose first task has run: the workers are up and warm."""
    network = mesh.create_network("client e2e", description="meshclient against mesh serve")
    warm = mesh.submit(network["id"], "Warm up", wait=True, timeout=120)
    assert warm["status"] == "completed", warm
    return network["id"]


def _assert_whole(events: list[Event], *, first: int = 1) -> None:
    """Ids count on from `first` with no gap or repeat, and only the last event is final."""
    assert [e.id for e in events] == list(range(first, first + len(events)))
    assert events[-1].is_final
    assert not any(e.is_final for e in events[:-1])


def test_submit_with_wait_answers_the_completed_task(mesh: Mesh, network_id: str) -> None:
    task = mesh.submit(
        network_id,
        "Write the launch email for Mesh",
        context={"segment": "developers"},
        priority="high",
        wait=True,
        timeout=120,
    )

    assert task["status"] == "completed"
    assert task["context"] == {"segment": "developers"}
    assert task["result"]["answer"].startswith("[offline model, not an AI]")
    assert {s["agent"] for s in task["subtasks"]} >= {"content", "research"}
    assert task["history"][-1]["status"] == "completed"


def test_events_count_from_1_without_a_gap_and_end_with_the_final_event(
    mesh: Mesh, network_id: str
) -> None:
    task = mesh.submit(network_id, "Write the pricing page")

    events = list(mesh.events(network_id, task["id"]))

    _assert_whole(events)
    types = [e.type for e in events]
    assert types[0] == "task.status" and events[0].data["status"] == "queued"
    assert {"task.plan", "step.started", "step.finished", "critic.verdict"} <= set(types)
    assert events[-1].type == "task.completed"
    assert events[-1].data["result"]["answer"].startswith("[offline model, not an AI]")
    finished = [e.data for e in events if e.type == "step.finished"]
    assert all(d["model"] and d["latency_ms"] > 0 and d["input_tokens"] > 0 for d in finished)
    # The task's revision is the id of its latest event.
    summary = mesh.get_task(network_id, task["id"], view="summary")
    assert summary["revision"] == events[-1].id
    assert summary["network_id"] == network_id


def test_a_stream_dropped_after_event_k_resumes_at_k_plus_1_without_a_repeat(
    mesh: Mesh, network_id: str
) -> None:
    task = mesh.submit(network_id, "Write the onboarding guide")
    k = 3
    stream = mesh.events(network_id, task["id"])
    before = [next(stream) for _ in range(k)]
    stream.close()  # the connection goes with it

    after = list(mesh.events(network_id, task["id"], last_event_id=k))

    assert [e.id for e in before] == [1, 2, 3]
    assert after[0].id == k + 1
    _assert_whole(before + after)
    again = list(mesh.events(network_id, task["id"], last_event_id=0))
    assert [(e.id, e.type) for e in again] == [(e.id, e.type) for e in before + after]


def test_a_stream_resumed_after_the_final_event_ends_at_once(mesh: Mesh, network_id: str) -> None:
    task = mesh.submit(network_id, "Write a subject line", wait=True, timeout=120)
    started = time.monotonic()

    events = list(mesh.events(network_id, task["id"], last_event_id=task["revision"]))

    assert events == []
    assert time.monotonic() - started < 5  # no reconnecting to wait for a final event


def test_a_read_with_the_current_etag_is_not_modified(mesh: Mesh, network_id: str) -> None:
    task = mesh.submit(network_id, "Write a tagline", wait=True, timeout=120)
    revision = task["revision"]

    unchanged = mesh.get_task(network_id, task["id"], if_none_match=revision)
    older = mesh.get_task(network_id, task["id"], if_none_match=revision - 1)

    assert unchanged == NotModified(revision=revision, etag=f'"{revision}"')
    assert older["id"] == task["id"] and older["revision"] == revision


def test_cancelling_a_finished_task_raises_conflict(mesh: Mesh, network_id: str) -> None:
    task = mesh.submit(network_id, "Write a haiku", wait=True, timeout=120)

    with pytest.raises(Conflict) as raised:
        mesh.cancel(network_id, task["id"])

    assert raised.value.status == 409
    assert "only an unfinished task can be cancelled" in raised.value.message


def test_a_task_cancelled_halfway_ends_its_stream_with_task_cancelled(
    mesh: Mesh, network_id: str
) -> None:
    task = mesh.submit(network_id, "Write the release notes")
    events: list[Event] = []
    for event in mesh.events(network_id, task["id"]):
        events.append(event)
        if event.type == "step.started" and event.data["subtask"] == "@plan":
            cancelled = mesh.cancel(network_id, task["id"])
            assert cancelled["status"] == "cancelled"

    _assert_whole(events)
    assert events[-1].type == "task.cancelled"
    assert mesh.get_task(network_id, task["id"])["status"] == "cancelled"


def test_a_wrong_key_raises_unauthorized(base: str) -> None:
    wrong = "mesh_0123456789abcdef_" + "A" * 43

    with Mesh(base, wrong) as mesh, pytest.raises(Unauthorized) as raised:
        mesh.list_networks()

    assert raised.value.status == 401
    assert wrong not in str(raised.value) and wrong not in repr(raised.value)


def test_async_mesh_runs_the_same_flow(base: str, network_id: str) -> None:
    async def run() -> None:
        async with AsyncMesh(base, DEV_KEY) as mesh:
            network = await mesh.get_network(network_id)
            assert network["name"] == "client e2e"
            task = await mesh.submit(network_id, "Write the FAQ", wait=True, timeout=120)
            assert task["status"] == "completed"
            stream = mesh.events(network_id, task["id"])
            async with contextlib.aclosing(stream):
                events = [event async for event in stream]
            _assert_whole(events)
            assert events[-1].id == task["revision"]
            unchanged = await mesh.get_task(network_id, task["id"], if_none_match=task["revision"])
            assert isinstance(unchanged, NotModified)
            with pytest.raises(Conflict):
                await mesh.cancel(network_id, task["id"])

    asyncio.run(run())
