"""Memory search, history and promotion, in both clients, against a scripted API."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from meshclient import (
    AsyncMesh,
    ConfidenceHistory,
    MemoryItem,
    Mesh,
    NotFound,
    Page,
    ProtocolError,
    Unprocessable,
)
from tests.client.fakes import API_KEY, BASE_URL, NETWORK_ID, TASK_ID, ScriptedApi, error
from tests.client.memory_answers import (
    CRITIC,
    ITEM_ID,
    MEMORY_PATH,
    RATING,
    history,
    item,
    scored,
)

HISTORY_PATH = f"{MEMORY_PATH}/{ITEM_ID}/history"
PROMOTE_PATH = f"{MEMORY_PATH}/{ITEM_ID}/promote"


def ranked(score: float, relevance: float) -> MemoryItem:
    return scored(ITEM_ID, score, relevance)


def mesh_for(api: ScriptedApi) -> Mesh:
    return Mesh(BASE_URL, API_KEY, transport=api.transport, sleep=lambda _: None)


def test_a_search_sends_its_text_agent_and_filters_and_reads_the_scores() -> None:
    pages = json.dumps({"total": 3, "total_pages": 2, "page": 1, "next_page": 2})
    answer = [ranked(0.87, 1.0), {**ranked(0.4, 0.2), "id": "other"}]
    api = ScriptedApi(httpx.Response(200, json=answer, headers={"X-Pagination": pages}))

    with mesh_for(api) as mesh:
        found = mesh.list_memory(
            NETWORK_ID,
            q="what do teachers pay",
            agent="research",
            type="fact",
            min_confidence=0.5,
            task_id=TASK_ID,
            page_size=2,
        )

    request = api.requests[0]
    assert (request.method, request.url.path) == ("GET", MEMORY_PATH)
    assert sorted(request.url.params.multi_items()) == [
        ("agent", "research"),
        ("min_confidence", "0.5"),
        ("page_size", "2"),
        ("q", "what do teachers pay"),
        ("task_id", TASK_ID),
        ("type", "fact"),
    ]
    assert isinstance(found, Page)
    assert [(m["id"], m["score"]) for m in found] == [(ITEM_ID, 0.87), ("other", 0.4)]
    assert found.items[0]["score_parts"]["relevance"] == 1.0
    assert (found.total, found.next_page) == (3, 2)


def test_a_list_without_search_asks_for_no_ranking() -> None:
    # Sending an empty q or agent would turn the newest-first list into a ranked one.
    api = ScriptedApi(httpx.Response(200, json=[item()]))

    with mesh_for(api) as mesh:
        found = mesh.list_memory(NETWORK_ID, task_id=TASK_ID)

    assert dict(api.requests[0].url.params) == {"task_id": TASK_ID}
    assert "score" not in found.items[0]


def test_a_refused_search_raises_the_apis_error() -> None:
    api = ScriptedApi(error(422, "agent: must be an agent type's name"))

    with mesh_for(api) as mesh, pytest.raises(Unprocessable, match="agent type's name"):
        mesh.list_memory(NETWORK_ID, agent="no such type!")

    assert api.requests[0].url.params["agent"] == "no such type!"


def test_memory_history_reads_the_changes_oldest_first() -> None:
    api = ScriptedApi(httpx.Response(200, json=history(CRITIC, RATING)))

    with mesh_for(api) as mesh:
        answer = mesh.memory_history(NETWORK_ID, ITEM_ID)

    assert [(r.method, r.url.path) for r in api.requests] == [("GET", HISTORY_PATH)]
    assert answer["confidence"] == 0.58
    assert [(c["source"], c["before"], c["after"]) for c in answer["changes"]] == [
        ("critic", 0.5, 0.6),
        ("rating", 0.6, 0.58),
    ]


def test_the_history_of_an_unknown_item_raises_not_found() -> None:
    api = ScriptedApi(error(404, "memory item not found"))

    with mesh_for(api) as mesh, pytest.raises(NotFound, match="memory item not found"):
        mesh.memory_history(NETWORK_ID, ITEM_ID)


def test_a_history_that_is_not_an_object_is_a_protocol_error() -> None:
    api = ScriptedApi(httpx.Response(200, json=[]))

    with mesh_for(api) as mesh, pytest.raises(ProtocolError):
        mesh.memory_history(NETWORK_ID, ITEM_ID)


def test_promote_memory_posts_without_a_body_and_answers_the_item() -> None:
    promoted = item(type="context", promoted_at="2026-12-07T10:05:00+00:00")
    api = ScriptedApi(httpx.Response(200, json=promoted))

    with mesh_for(api) as mesh:
        answer = mesh.promote_memory(NETWORK_ID, ITEM_ID)

    assert [(r.method, r.url.path) for r in api.requests] == [("POST", PROMOTE_PATH)]
    assert api.bodies() == [None]
    assert answer["promoted_at"] == "2026-12-07T10:05:00+00:00"


def test_a_promotion_whose_answer_was_lost_is_sent_again() -> None:
    # Safe to repeat: promoting an item again changes nothing.
    promoted = item(promoted_at="2026-12-07T10:05:00+00:00")
    api = ScriptedApi(httpx.ReadTimeout("the answer was lost"), httpx.Response(200, json=promoted))

    with mesh_for(api) as mesh:
        assert mesh.promote_memory(NETWORK_ID, ITEM_ID) == promoted

    assert [r.url.path for r in api.requests] == [PROMOTE_PATH] * 2


def test_promoting_an_unknown_item_raises_not_found() -> None:
    api = ScriptedApi(error(404, "memory item not found"))

    with mesh_for(api) as mesh, pytest.raises(NotFound):
        mesh.promote_memory(NETWORK_ID, ITEM_ID)

    assert len(api.requests) == 1


def test_the_async_client_searches_reads_history_and_promotes_alike() -> None:
    promoted = item(promoted_at="2026-12-07T10:05:00+00:00")
    api = ScriptedApi(
        httpx.Response(200, json=[ranked(0.87, 1.0)]),
        httpx.Response(200, json=history(CRITIC, RATING)),
        httpx.Response(200, json=promoted),
    )

    async def sleep(_: float) -> None:
        return None

    async def run() -> tuple[Page[MemoryItem], ConfidenceHistory, MemoryItem]:
        async with AsyncMesh(BASE_URL, API_KEY, transport=api.transport, sleep=sleep) as mesh:
            found = await mesh.list_memory(NETWORK_ID, q="teachers", task_id=TASK_ID)
            changes = await mesh.memory_history(NETWORK_ID, ITEM_ID)
            kept = await mesh.promote_memory(NETWORK_ID, ITEM_ID)
            return found, changes, kept

    found, changes, kept = asyncio.run(run())

    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", MEMORY_PATH),
        ("GET", HISTORY_PATH),
        ("POST", PROMOTE_PATH),
    ]
    assert dict(api.requests[0].url.params) == {"q": "teachers", "task_id": TASK_ID}
    assert found.items[0]["score"] == 0.87
    assert changes == history(CRITIC, RATING)
    assert kept == promoted
