"""/api/mesh/networks/{id}/memory: add items, read them back filtered."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from tests.integration.api.client import NETWORKS, ApiClient, add_memory, memory_url
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration


def test_adding_an_item_answers_201_and_records_it_in_postgres_and_redis(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    response = client.post(
        memory_url(network),
        json={
            "type": "decision",
            "content": "Send on Tuesday",
            "confidence": 0.7,
            "metadata": {"source": "client"},
        },
    )

    assert response.status_code == 201
    item = response.get_json()
    assert UUID(item["id"])
    assert item["network_id"] == network["id"]
    assert (item["type"], item["content"], item["confidence"]) == (
        "decision",
        "Send on Tuesday",
        0.7,
    )
    assert item["metadata"] == {"source": "client"}
    assert record.count("memory_items", id=item["id"]) == 1
    assert record.memory_keys(network["id"])


def test_an_item_defaults_to_full_confidence_and_no_metadata(
    client: ApiClient, network: dict[str, Any]
) -> None:
    item = add_memory(client, network, type="fact", content="Mesh has seven agent types")

    assert item["confidence"] == 1.0
    assert item["metadata"] == {}


def test_items_read_back_newest_first(client: ApiClient, network: dict[str, Any]) -> None:
    added = [add_memory(client, network, type="fact", content=f"fact {i}") for i in range(3)]

    response = client.get(memory_url(network))

    assert response.status_code == 200
    assert response.get_json() == added[::-1]


def test_items_filter_by_type_and_confidence(client: ApiClient, network: dict[str, Any]) -> None:
    fact = add_memory(client, network, type="fact", content="a fact", confidence=0.9)
    unsure = add_memory(client, network, type="fact", content="a guess", confidence=0.2)
    decision = add_memory(client, network, type="decision", content="a decision")
    add_memory(client, network, type="feedback", content="some feedback")
    url = memory_url(network)

    def ids(query: str) -> list[str]:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200
        return [item["id"] for item in response.get_json()]

    assert ids("type=fact") == [unsure["id"], fact["id"]]
    assert ids("type=fact&type=decision") == [decision["id"], unsure["id"], fact["id"]]
    assert ids("type=fact&min_confidence=0.5") == [fact["id"]]
    assert len(ids("page_size=2")) == 2


def test_items_filter_by_the_task_named_in_their_metadata(
    client: ApiClient, network: dict[str, Any]
) -> None:
    task_id = str(uuid4())
    mine = add_memory(
        client, network, type="context", content="for the task", metadata={"task_id": task_id}
    )
    add_memory(client, network, type="context", content="for no task")

    response = client.get(f"{memory_url(network)}?task_id={task_id}")

    assert [item["id"] for item in response.get_json()] == [mine["id"]]


def test_items_of_one_network_are_not_read_from_another(client: ApiClient) -> None:
    first, second = (
        client.post(NETWORKS, json={"name": name}).get_json() for name in ("first", "second")
    )
    add_memory(client, first, type="fact", content="only in the first")

    assert client.get(memory_url(second)).get_json() == []


def test_the_memory_list_paginates(client: ApiClient, network: dict[str, Any]) -> None:
    for i in range(5):
        add_memory(client, network, type="fact", content=f"fact {i}")

    response = client.get(f"{memory_url(network)}?page=2&page_size=2")

    assert response.status_code == 200
    assert [item["content"] for item in response.get_json()] == ["fact 2", "fact 1"]
    assert json.loads(response.headers["X-Pagination"])["total"] == 5


def test_task_and_limit_read_as_task_id_and_page_size(
    client: ApiClient, network: dict[str, Any]
) -> None:
    task = str(uuid4())
    mine = [
        add_memory(client, network, type="fact", content=f"finding {i}", metadata={"task_id": task})
        for i in range(3)
    ]
    add_memory(client, network, type="fact", content="another task's finding")
    url = memory_url(network)

    first = client.get(f"{url}?task={task}&limit=2")
    second = client.get(f"{url}?task={task}&limit=2&page=2")

    assert [m["id"] for m in first.get_json()] == [m["id"] for m in mine[::-1][:2]]
    assert [m["id"] for m in second.get_json()] == [mine[0]["id"]]
    assert json.loads(first.headers["X-Pagination"])["total"] == 3
    assert client.get(f"{url}?limit=0").status_code == 422
