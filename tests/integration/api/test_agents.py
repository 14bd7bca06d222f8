"""/api/mesh/networks/{id}/agents: add, list, remove."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest

from tests.integration.api.client import NETWORKS, ApiClient, assert_error
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration


def agents_url(network: dict[str, Any]) -> str:
    return f"{NETWORKS}/{network['id']}/agents"


def test_adding_an_agent_answers_201_with_the_agent(
    client: ApiClient, network: dict[str, Any]
) -> None:
    response = client.post(agents_url(network), json={"type": "research"})

    assert response.status_code == 201
    agent = response.get_json()
    assert UUID(agent["id"])
    assert agent["network_id"] == network["id"]
    assert agent["type"] == "research"
    assert agent["name"] == "research"
    assert agent["queue"] == "agent.research"
    assert agent["status"] == "idle"
    assert agent["model"] == {"chain": None, "temperature": 0.3, "max_tokens": 1024}
    assert agent["capabilities"]
    assert agent["metrics"] == {
        "calls": 0,
        "failures": 0,
        "mean_latency_ms": 0.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "in_flight": 0,
    }


def test_an_agent_keeps_the_name_model_and_capabilities_it_was_given(
    client: ApiClient, network: dict[str, Any]
) -> None:
    body = {
        "type": "design",
        "name": "Art director",
        "model": {"chain": ["openai/gpt-4o"], "temperature": 1.2, "max_tokens": 4096},
        "capabilities": ["layouts", "palettes"],
    }

    agent = client.post(agents_url(network), json=body).get_json()

    assert {k: agent[k] for k in body} == body


def test_the_agents_list_has_the_team_and_the_added_agent(
    client: ApiClient, network: dict[str, Any]
) -> None:
    added = client.post(agents_url(network), json={"type": "content", "name": "Second writer"})

    response = client.get(agents_url(network))

    assert response.status_code == 200
    listed = response.get_json()
    team_ids = {a["id"] for a in network["agents"]}
    assert {a["id"] for a in listed} == team_ids | {added.get_json()["id"]}
    assert all(a["network_id"] == network["id"] for a in listed)


def test_removing_an_agent_answers_204_and_it_leaves_the_network(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    critic = next(a for a in network["agents"] if a["type"] == "critic")

    response = client.delete(f"{agents_url(network)}/{critic['id']}")

    assert response.status_code == 204
    assert response.get_data() == b""
    assert critic["id"] not in {a["id"] for a in client.get(agents_url(network)).get_json()}
    assert record.count("agents", network_id=network["id"]) == 6
    again = client.delete(f"{agents_url(network)}/{critic['id']}")
    assert_error(again, 404, field=f"agent {critic['id']}", problem="not found")


def test_a_network_read_shows_its_current_agents(
    client: ApiClient, network: dict[str, Any]
) -> None:
    added = client.post(agents_url(network), json={"type": "analytics"}).get_json()
    removed = network["agents"][0]
    client.delete(f"{agents_url(network)}/{removed['id']}")

    read = client.get(f"{NETWORKS}/{network['id']}").get_json()

    ids = {a["id"] for a in read["agents"]}
    assert added["id"] in ids
    assert removed["id"] not in ids


def test_the_agents_list_paginates(client: ApiClient, network: dict[str, Any]) -> None:
    response = client.get(f"{agents_url(network)}?page=2&page_size=3")

    assert response.status_code == 200
    assert len(response.get_json()) == 3
    assert json.loads(response.headers["X-Pagination"])["total"] == 7
