"""/api/mesh/networks: create, read, list a page at a time, delete."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshapi.app import create_app
from meshcore.domain.network import DEFAULT_TEAM as BUILTIN_TEAM
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.integration.api.client import NETWORKS, ApiClient, assert_error, bearer, new_key
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

DEFAULT_TEAM = list(BUILTIN_TEAM)


def create(client: ApiClient, **body: Any) -> dict[str, Any]:
    response = client.post(NETWORKS, json={"name": f"net-{uuid4().hex[:8]}", **body})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def pagination(response: Any) -> dict[str, int]:
    return json.loads(response.headers["X-Pagination"])


def test_a_network_created_without_agents_gets_the_default_team(client: ApiClient) -> None:
    response = client.post(NETWORKS, json={"name": "Launch team"})

    assert response.status_code == 201
    network = response.get_json()
    assert UUID(network["id"])
    assert network["name"] == "Launch team"
    assert network["description"] == ""
    assert [a["type"] for a in network["agents"]] == DEFAULT_TEAM
    for agent in network["agents"]:
        assert agent["network_id"] == network["id"]
        assert agent["name"] == agent["type"]
        assert agent["status"] == "idle"
        assert agent["queue"] == (
            "coordinator" if agent["type"] == "coordinator" else f"agent.{agent['type']}"
        )
        assert agent["metrics"]["calls"] == 0
        assert agent["capabilities"]


def test_a_network_takes_its_config_defaults_from_the_settings(
    database_url: str, redis_url: str, tenant: str, record: Record
) -> None:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        tenant=tenant,
        max_iterations=5,
        timeout_seconds=120,
        quality_threshold=0.6,
        api_key_secret=API_KEY_SECRET,
        data_keys=DATA_KEYS,
    )
    app: Flask = create_app(settings)
    try:
        key = new_key(app, tenant)
        response = app.test_client().post(NETWORKS, json={"name": "defaults"}, headers=bearer(key))
    finally:
        app.extensions["mesh"].close()

    assert response.status_code == 201
    assert response.get_json()["config"] == {
        "max_iterations": 5,
        "timeout_seconds": 120,
        "quality_threshold": 0.6,
        "model_chain": None,
        "budget": {"tokens": None, "cost_usd": None},
        "webhook": None,
        "approval": {"plan": False, "timeout_seconds": 3600},
        "memory": {"ttl_seconds": {}, "max_items": None},
    }


def test_a_network_keeps_the_config_and_agents_it_was_given(client: ApiClient) -> None:
    config = {
        "max_iterations": 2,
        "timeout_seconds": 600,
        "quality_threshold": 0.9,
        "model_chain": ["openai/gpt-4o", "gemini/gemini-2.0-flash"],
        "budget": {"tokens": 50_000, "cost_usd": 0.25},
    }
    agents = [
        {"type": "coordinator"},
        {
            "type": "content",
            "name": "Copywriter",
            "model": {"chain": ["openai/gpt-4o"], "temperature": 0.9, "max_tokens": 2048},
            "capabilities": ["headlines"],
        },
        {"type": "critic"},
    ]

    network = create(client, description="Emails", config=config, agents=agents)

    assert network["description"] == "Emails"
    assert network["config"] == {
        **config,
        "webhook": None,
        "approval": {"plan": False, "timeout_seconds": 3600},
        "memory": {"ttl_seconds": {}, "max_items": None},
    }
    assert [(a["type"], a["name"]) for a in network["agents"]] == [
        ("coordinator", "coordinator"),
        ("content", "Copywriter"),
        ("critic", "critic"),
    ]
    copywriter = network["agents"][1]
    assert copywriter["model"] == {
        "chain": ["openai/gpt-4o"],
        "temperature": 0.9,
        "max_tokens": 2048,
    }
    assert copywriter["capabilities"] == ["headlines"]


def by_id(network: dict[str, Any]) -> dict[str, Any]:
    """The network as a read shows it: agents by id, and no webhook secret (only the create's
    answer shows it, once)."""
    shown = {k: v for k, v in network.items() if k != "webhook_secret"}
    return {**shown, "agents": sorted(network["agents"], key=lambda a: a["id"])}


def test_a_created_network_reads_back_as_it_was_answered(client: ApiClient) -> None:
    network = create(client)

    response = client.get(f"{NETWORKS}/{network['id']}")

    assert response.status_code == 200
    assert by_id(response.get_json()) == by_id(network)
    assert network["webhook_secret"].startswith("whsec_")
    assert "webhook_secret" not in response.get_json()


def test_a_network_reads_back_its_agents_in_the_order_given(client: ApiClient) -> None:
    # 32 agents: the chance that random ids happen to sort in this order is 1 in 32!.
    names = ["lead", *(f"writer-{i:02}" for i in range(30)), "reviewer"]
    types = ["coordinator", *["content"] * 30, "critic"]
    network = create(
        client, agents=[{"type": t, "name": n} for t, n in zip(types, names, strict=True)]
    )

    read = client.get(f"{NETWORKS}/{network['id']}").get_json()

    assert [a["name"] for a in network["agents"]] == names
    assert [a["name"] for a in read["agents"]] == names


def test_networks_list_newest_first(client: ApiClient) -> None:
    created = [create(client) for _ in range(3)]

    response = client.get(NETWORKS)

    assert response.status_code == 200
    assert [n["id"] for n in response.get_json()] == [n["id"] for n in reversed(created)]
    assert pagination(response) == {
        "total": 3,
        "total_pages": 1,
        "first_page": 1,
        "last_page": 1,
        "page": 1,
    }


def test_networks_list_a_page_at_a_time(client: ApiClient) -> None:
    created = [create(client)["id"] for _ in range(5)]

    pages = [client.get(f"{NETWORKS}?page={page}&page_size=2") for page in (1, 2, 3)]

    assert [len(p.get_json()) for p in pages] == [2, 2, 1]
    assert [n["id"] for p in pages for n in p.get_json()] == created[::-1]
    assert pagination(pages[0]) == {
        "total": 5,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 1,
        "next_page": 2,
    }
    assert pagination(pages[2])["previous_page"] == 2
    assert "next_page" not in pagination(pages[2])


def test_a_page_past_the_last_is_empty(client: ApiClient) -> None:
    create(client)

    response = client.get(f"{NETWORKS}?page=5&page_size=10")

    assert response.status_code == 200
    assert response.get_json() == []


def test_networks_of_another_tenant_are_not_listed_or_found(
    app: Flask, client: ApiClient, engine: sa.Engine, redis_client: redis.Redis, record: Record
) -> None:
    # The same app: the tenant comes from the key a request carries.
    other = Record(engine, redis_client, f"{record.tenant}-other")
    try:
        their_key = bearer(new_key(app, other.tenant))
        theirs = app.test_client().post(NETWORKS, json={"name": "theirs"}, headers=their_key)
        theirs = theirs.get_json()
        mine = create(client)

        listed = client.get(NETWORKS).get_json()
        found = client.get(f"{NETWORKS}/{theirs['id']}")
    finally:
        other.purge()

    assert [n["id"] for n in listed] == [mine["id"]]
    assert_error(found, 404, field=f"network {theirs['id']}", problem="not found")


def test_deleting_a_network_answers_204_and_removes_everything_it_had(
    client: ApiClient, record: Record, network: dict[str, Any], queued_task: dict[str, Any]
) -> None:
    url = f"{NETWORKS}/{network['id']}"
    added = client.post(f"{url}/memory", json={"type": "fact", "content": "Mesh ships in May"})
    assert added.status_code == 201
    assert record.memory_keys(network["id"])

    response = client.delete(url)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get(url), 404, field=f"network {network['id']}", problem="not found")
    for table in ("agents", "tasks", "memory_items"):
        assert record.count(table, network_id=network["id"]) == 0
    assert record.count("task_events", task_id=queued_task["id"]) == 0
    assert record.memory_keys(network["id"]) == []


def test_deleting_a_network_leaves_the_others(client: ApiClient, record: Record) -> None:
    doomed, kept = create(client), create(client)

    assert client.delete(f"{NETWORKS}/{doomed['id']}").status_code == 204

    assert by_id(client.get(f"{NETWORKS}/{kept['id']}").get_json()) == by_id(kept)
    assert record.count("agents", network_id=kept["id"]) == len(DEFAULT_TEAM)


@pytest.mark.parametrize(
    ("team", "missing"),
    [
        (["content"], ["coordinator", "critic"]),
        (["coordinator", "content"], ["critic"]),
        (["critic", "research", "content"], ["coordinator"]),
    ],
)
def test_a_network_that_could_not_run_a_task_is_refused(
    client: ApiClient, record: Record, team: list[str], missing: list[str]
) -> None:
    before = record.snapshot()

    response = client.post(
        NETWORKS, json={"name": "short-handed", "agents": [{"type": t} for t in team]}
    )

    body = assert_error(response, 422, field="agents", problem=f"no {missing[0]}")
    (said,) = body["errors"]["json"]["agents"]
    assert all(role in said for role in missing), said
    assert record.snapshot() == before
