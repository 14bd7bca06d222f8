"""POST /api/mesh/networks/{id}/memory: a restated fact answers the item that holds it, and
contradicting decisions name each other in `contradicts`."""

from __future__ import annotations

from typing import Any

import pytest

from meshcore.domain.confidence import reinforced
from tests.integration.api.client import ApiClient, add_memory, memory_url
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration


def test_an_item_says_it_contradicts_nothing_by_default(
    client: ApiClient, network: dict[str, Any]
) -> None:
    item = add_memory(client, network, type="fact", content="Orbit ships in May")

    assert item["contradicts"] == []
    assert client.get(memory_url(network)).get_json() == [item]


def test_a_restated_fact_answers_the_item_that_holds_it_with_its_confidence_raised(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    first = add_memory(
        client, network, type="fact", content="Orbit ships on 12 May.", confidence=0.5
    )

    again = add_memory(
        client, network, type="fact", content="orbit ships on 12 MAY", confidence=0.9,
        metadata={"source": "another client"},
    )  # fmt: skip

    assert again == {**first, "confidence": reinforced(0.5, 0.9)}
    assert record.count("memory_items") == 1
    history = client.get(f"{memory_url(network)}/{first['id']}/history").get_json()
    assert [(c["source"], c["reason"], c["before"]) for c in history["changes"]] == [
        ("merge", "restated by a client", 0.5)
    ]
    assert client.get(memory_url(network)).get_json() == [again]


def test_a_restatement_retried_under_its_key_merges_once(
    client: ApiClient, network: dict[str, Any]
) -> None:
    first = add_memory(client, network, type="fact", content="Orbit ships in May", confidence=0.5)
    url, headers = memory_url(network), {"Idempotency-Key": "restated-once"}
    body = {"type": "fact", "content": "orbit ships in may", "confidence": 0.9}

    answers = [client.post(url, json=body, headers=headers) for _ in range(2)]

    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].get_json() == answers[1].get_json()
    assert answers[1].get_json()["id"] == first["id"]
    history = client.get(f"{url}/{first['id']}/history").get_json()
    assert len(history["changes"]) == 1


def test_contradicting_decisions_name_each_other(
    client: ApiClient, network: dict[str, Any]
) -> None:
    send = add_memory(client, network, type="decision", content="Send on Tuesday")
    other = add_memory(client, network, type="decision", content="Send on Thursday")

    dont = add_memory(client, network, type="decision", content="Don't send on Tuesday")

    assert dont["contradicts"] == [send["id"]]
    shown = {i["id"]: i["contradicts"] for i in client.get(memory_url(network)).get_json()}
    assert shown == {send["id"]: [dont["id"]], dont["id"]: [send["id"]], other["id"]: []}
