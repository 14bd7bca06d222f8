"""GET /api/mesh/networks/{id}/memory?q=&agent=: memory ranked by relevance, with its score."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from tests.integration.api.client import (
    ApiClient,
    add_memory,
    assert_error,
    bearer,
    memory_url,
    new_key,
)
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

PRICE = "Orbit's price is $9 a month for teachers"


@pytest.fixture
def items(client: ApiClient, network: dict[str, Any], record: Record) -> dict[str, dict]:
    return {
        "price": add_memory(client, network, type="fact", content=PRICE, confidence=0.9),
        "launch": add_memory(client, network, type="fact", content="Orbit launches in March"),
        "colours": add_memory(client, network, type="context", content="Spring colours are blue"),
        "tone": add_memory(
            client, network, type="feedback", content="The price line reads too long"
        ),
    }


def get(client: ApiClient, network: dict[str, Any], query: str) -> list[dict[str, Any]]:
    response = client.get(f"{memory_url(network)}?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_q_answers_the_items_holding_its_words_best_first_with_their_scores(
    client: ApiClient, network: dict[str, Any], items: dict[str, dict]
) -> None:
    found = get(client, network, "q=what+do+teachers+pay+for+Orbit")

    assert [i["id"] for i in found] == [items["price"]["id"], items["launch"]["id"]]
    best = found[0]
    assert best["content"] == PRICE
    parts = best["score_parts"]
    assert parts["relevance"] == 1.0 and 0 < found[1]["score_parts"]["relevance"] < 1
    assert parts["confidence"] == 0.9
    assert 0.99 < parts["recency"] <= 1.0
    assert parts["type_weight"] == 1.0
    mixed = 0.6 * parts["relevance"] + 0.25 * parts["confidence"] + 0.15 * parts["recency"]
    assert best["score"] == pytest.approx(mixed)


def test_q_keeps_to_the_filters_asked_for(
    client: ApiClient, network: dict[str, Any], items: dict[str, dict]
) -> None:
    assert [i["id"] for i in get(client, network, "q=price&type=feedback")] == [items["tone"]["id"]]
    assert [i["id"] for i in get(client, network, "q=Orbit&min_confidence=0.95")] == [
        items["launch"]["id"]
    ]
    assert get(client, network, "q=zebra") == []


def test_an_agent_ranks_among_the_types_it_reads_with_its_weights(
    client: ApiClient, network: dict[str, Any], items: dict[str, dict]
) -> None:
    # The critic reads facts and decisions; asked for feedback too, it weighs it first.
    as_critic = get(client, network, "q=price&agent=critic")
    weighed = get(client, network, "q=price&agent=critic&type=fact&type=feedback")

    assert [i["id"] for i in as_critic] == [items["price"]["id"]]
    assert [i["id"] for i in weighed] == [items["tone"]["id"], items["price"]["id"]]
    assert weighed[0]["score_parts"]["type_weight"] > 1


def test_an_agent_without_q_ranks_its_newest_items_by_confidence_and_recency(
    client: ApiClient, network: dict[str, Any], items: dict[str, dict]
) -> None:
    found = get(client, network, "agent=research")

    assert {i["id"] for i in found} == {items[k]["id"] for k in ("price", "launch", "colours")}
    assert found[0]["id"] == items["launch"]["id"]  # confidence 1.0
    assert all(i["score_parts"]["relevance"] == 0 for i in found)


def test_ranked_results_page(
    client: ApiClient, network: dict[str, Any], items: dict[str, dict]
) -> None:
    everything = get(client, network, "q=Orbit+price+spring")

    response = client.get(f"{memory_url(network)}?q=Orbit+price+spring&page=2&page_size=2")

    assert response.status_code == 200
    assert [i["id"] for i in response.get_json()] == [i["id"] for i in everything[2:4]]
    assert json.loads(response.headers["X-Pagination"])["total"] == len(everything) == 4


def test_without_q_or_agent_the_listing_carries_no_score(
    client: ApiClient, network: dict[str, Any], items: dict[str, dict]
) -> None:
    found = get(client, network, "")

    assert [i["id"] for i in found] == [
        items[k]["id"] for k in ("tone", "colours", "launch", "price")
    ]
    assert all("score" not in i and "score_parts" not in i for i in found)


@pytest.mark.parametrize(
    ("query", "field", "problem"),
    [
        ("q=", "q", "length"),
        ("q=" + "x" * 2001, "q", "length"),
        ("q=a%00b", "q", "NUL"),
        ("agent=Not+A+Type", "agent", "agent type"),
        ("agent=nobody-here", "agent", "no agent type"),
        ("q=price&min_confidence=2", "min_confidence", "less than or equal to 1"),
    ],
)
def test_bad_values_are_422_naming_the_field(
    client: ApiClient, network: dict[str, Any], query: str, field: str, problem: str
) -> None:
    response = client.get(f"{memory_url(network)}?{query}")

    assert_error(response, 422, field=field, problem=problem)


def test_another_tenants_key_gets_404_and_nothing_of_the_network(
    app: Flask,
    client: ApiClient,
    network: dict[str, Any],
    items: dict[str, dict],
    other_tenant: str,
) -> None:
    foreign = client.get(
        f"{memory_url(network)}?q=Orbit&agent=research",
        headers=bearer(new_key(app, other_tenant)),
    )

    assert_error(foreign, 404, field=None, problem="not found")
