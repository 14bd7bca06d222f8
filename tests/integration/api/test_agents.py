"""/api/mesh/networks/{id}/agents: add, list, remove."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.integration.api.client import NETWORKS, ApiClient, assert_error
from tests.integration.api.race import race
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


def of_type(network: dict[str, Any], agent_type: str) -> dict[str, Any]:
    return next(a for a in network["agents"] if a["type"] == agent_type)


def test_removing_an_agent_answers_204_and_it_leaves_the_network(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    design = of_type(network, "design")

    response = client.delete(f"{agents_url(network)}/{design['id']}")

    assert response.status_code == 204
    assert response.get_data() == b""
    assert design["id"] not in {a["id"] for a in client.get(agents_url(network)).get_json()}
    assert record.count("agents", network_id=network["id"]) == 6
    again = client.delete(f"{agents_url(network)}/{design['id']}")
    assert_error(again, 404, field=f"agent {design['id']}", problem="not found")


@pytest.mark.parametrize("role", ["coordinator", "critic"])
def test_removing_the_last_coordinator_or_critic_is_refused(
    client: ApiClient, network: dict[str, Any], record: Record, role: str
) -> None:
    last = of_type(network, role)
    before = record.snapshot()

    response = client.delete(f"{agents_url(network)}/{last['id']}")

    assert_error(response, 409, field=f"network {network['id']}", problem=f"no {role}")
    assert record.snapshot() == before


def test_a_coordinator_with_a_second_one_can_be_removed(
    client: ApiClient, network: dict[str, Any]
) -> None:
    second = client.post(agents_url(network), json={"type": "coordinator"}).get_json()
    first = of_type(network, "coordinator")

    assert client.delete(f"{agents_url(network)}/{first['id']}").status_code == 204

    refused = client.delete(f"{agents_url(network)}/{second['id']}")
    assert_error(refused, 409, field=f"network {network['id']}", problem="no coordinator")


def test_two_concurrent_removals_never_leave_a_network_without_a_coordinator(
    app: Flask, client: ApiClient, network: dict[str, Any], engine: sa.Engine
) -> None:
    second = client.post(agents_url(network), json={"type": "coordinator"}).get_json()
    coordinators = [of_type(network, "coordinator"), second]

    def remove(agent: dict[str, Any]) -> Callable[[], int]:
        def call() -> int:
            rival = app.test_client()
            rival.error_schema = client.error_schema
            rival.use_key(client.api_key)
            return rival.delete(f"{agents_url(network)}/{agent['id']}").status_code

        return call

    # Held on the coordinators' rows: each removal gets as far as deleting its agent.
    lock = "SELECT id FROM agents WHERE network_id = :id AND type = 'coordinator' FOR UPDATE"
    statuses = race(engine, lock, {"id": network["id"]}, [remove(a) for a in coordinators])

    assert sorted(statuses) == [204, 409]
    left = [a for a in client.get(agents_url(network)).get_json() if a["type"] == "coordinator"]
    assert len(left) == 1


def test_a_network_read_shows_its_current_agents(
    client: ApiClient, network: dict[str, Any]
) -> None:
    added = client.post(agents_url(network), json={"type": "analytics"}).get_json()
    removed = of_type(network, "content")
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
