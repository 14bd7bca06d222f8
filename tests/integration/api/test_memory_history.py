"""/api/mesh/networks/{id}/memory/{item_id}/history: what an item's confidence learned, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from flask import Flask

from meshcore.domain.confidence import ConfidenceSource, reinforced
from meshcore.services.learning import MemoryLearning
from tests.integration.api.client import (
    NETWORKS,
    ApiClient,
    assert_error,
    bearer,
    memory_url,
    new_key,
)

pytestmark = pytest.mark.integration


def history_url(network: dict[str, Any], item_id: object) -> str:
    return f"{memory_url(network)}/{item_id}/history"


@pytest.fixture
def item(client: ApiClient, network: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        memory_url(network),
        json={"type": "fact", "content": "Orbit ships in May", "confidence": 0.5},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def learning(app: Flask, tenant: str) -> MemoryLearning:
    """The module tenant's MemoryLearning, as the app's composition root built it."""
    return app.extensions["mesh"].tenant(tenant).learning


def test_an_item_that_learned_nothing_has_its_confidence_and_no_changes(
    client: ApiClient, network: dict[str, Any], item: dict[str, Any]
) -> None:
    response = client.get(history_url(network, item["id"]))

    assert response.status_code == 200
    assert response.get_json() == {"item_id": item["id"], "confidence": 0.5, "changes": []}


def test_the_history_shows_each_change_oldest_first_with_its_source_and_reason(
    client: ApiClient, network: dict[str, Any], item: dict[str, Any], learning: MemoryLearning
) -> None:
    network_id, item_id, task_id = UUID(network["id"]), UUID(item["id"]), uuid4()
    learning.learn(
        network_id,
        [item_id],
        1.0,
        source=ConfidenceSource.CRITIC,
        reason="the critic passed the answer that used it",
        task_id=task_id,
    )
    learning.learn(
        network_id,
        [item_id],
        -1.0,
        source=ConfidenceSource.RATING,
        reason="rated 1/5",
        task_id=None,
    )

    response = client.get(history_url(network, item["id"]))

    assert response.status_code == 200
    body = response.get_json()
    up = reinforced(0.5, 1.0)
    down = reinforced(up, -1.0)
    assert body["item_id"] == item["id"]
    assert body["confidence"] == down
    assert [{k: v for k, v in c.items() if k != "at"} for c in body["changes"]] == [
        {
            "before": 0.5,
            "after": up,
            "source": "critic",
            "reason": "the critic passed the answer that used it",
            "task_id": str(task_id),
        },
        {"before": up, "after": down, "source": "rating", "reason": "rated 1/5", "task_id": None},
    ]
    first, second = (datetime.fromisoformat(c["at"]) for c in body["changes"])
    assert first.tzinfo is not None and first < second
    # What the list (the Redis view agents read) says agrees with the history.
    (listed,) = client.get(memory_url(network)).get_json()
    assert listed["confidence"] == down


def test_an_unknown_item_or_one_of_another_network_is_404(
    client: ApiClient, network: dict[str, Any], item: dict[str, Any]
) -> None:
    elsewhere = client.post(NETWORKS, json={"name": f"net-{uuid4().hex[:8]}"}).get_json()

    unknown = client.get(history_url(network, uuid4()))
    misplaced = client.get(history_url(elsewhere, item["id"]))
    malformed = client.get(history_url(network, "not-an-id"))

    assert_error(unknown, 404, field=None, problem="not found")
    assert_error(misplaced, 404, field=None, problem="not found")
    assert_error(malformed, 404, field="item_id", problem="not a valid id")


def test_another_tenants_key_gets_404_as_for_an_item_that_does_not_exist(
    client: ApiClient,
    app: Flask,
    network: dict[str, Any],
    item: dict[str, Any],
    other_tenant: str,
) -> None:
    theirs = bearer(new_key(app, other_tenant))

    foreign = client.get(history_url(network, item["id"]), headers=theirs)
    absent = client.get(history_url({"id": uuid4()}, uuid4()), headers=theirs)

    assert_error(foreign, 404, field=None, problem="not found")
    assert foreign.status_code == absent.status_code
    assert "Orbit" not in foreign.get_data(as_text=True)
