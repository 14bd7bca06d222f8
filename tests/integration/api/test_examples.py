"""Every request body the docs UI fills in from the served OpenAPI document works as sent.

The UI builds a body from the operation's example, or else from the schema ("string" for
every text): that made a task whose plan's subtask 'string' depends on itself. Each example
is taken from the document and posted for real, in the order a newcomer would try them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from flask import Flask

from tests.integration.api.client import API, ApiClient

pytestmark = pytest.mark.integration

NETWORKS = f"{API}/networks"
# Each operation that takes a body, in an order where every id it needs already exists.
IN_ORDER = [
    (f"{API}/keys", 201),
    (f"{API}/agent-types", 201),
    (NETWORKS, 201),
    (f"{NETWORKS}/{{network_id}}/agents", 201),
    (f"{NETWORKS}/{{network_id}}/memory", 201),
    (f"{NETWORKS}/{{network_id}}/tasks", 202),
]
# Each that changes what exists, with the ids the examples above made.
CHANGES = [(f"{API}/agent-types/{{name}}", 200)]
# Each that acts on a task whose plan awaits approval, and the status it leaves the task in.
TASK = f"{NETWORKS}/{{network_id}}/tasks/{{task_id}}"
ON_A_WAITING_PLAN = [(f"{TASK}/approve", "running"), (f"{TASK}/reject", "cancelled")]
ON_A_FINISHED_TASK = f"{TASK}/rating"


@pytest.fixture
def document(client: ApiClient) -> dict[str, Any]:
    return client.get(f"{API}/openapi.json").get_json()


def example_of(document: dict[str, Any], path: str, method: str = "post") -> Any:
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    assert "example" in body, f"{method} {path} has no example for the docs UI to fill in"
    return body["example"]


def test_every_operation_with_a_body_is_one_this_test_posts(document: dict[str, Any]) -> None:
    with_body = {
        path
        for path, item in document["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict) and "requestBody" in operation
    }

    assert with_body == {
        *(path for path, _ in IN_ORDER + CHANGES + ON_A_WAITING_PLAN),
        ON_A_FINISHED_TASK,
    }


def test_every_example_in_the_document_succeeds_when_posted(
    client: ApiClient, document: dict[str, Any]
) -> None:
    ids: dict[str, str] = {}
    for path, status in IN_ORDER:
        response = client.post(path.format(**ids), json=example_of(document, path))

        assert response.status_code == status, (path, response.get_data(as_text=True))
        if path == NETWORKS:
            ids["network_id"] = response.get_json()["id"]
        if path == f"{API}/agent-types":
            ids["name"] = response.get_json()["name"]
    task = response.get_json()
    for path, status in CHANGES:
        changed = client.put(path.format(**ids), json=example_of(document, path, "put"))
        assert changed.status_code == status, (path, changed.get_data(as_text=True))
    assert task["status"] == "queued"
    assert task["description"] == example_of(document, IN_ORDER[-1][0])["description"]


def test_the_example_network_can_run_a_task(client: ApiClient, document: dict[str, Any]) -> None:
    network = client.post(NETWORKS, json=example_of(document, NETWORKS)).get_json()
    types = {agent["type"] for agent in network["agents"]}

    assert {"coordinator", "critic"} <= types
    assert types - {"coordinator", "critic"}, "a network needs a specialist to plan for"


def test_the_example_of_a_plan_is_a_plan_the_api_accepts(
    client: ApiClient, document: dict[str, Any]
) -> None:
    schema = document["components"]["schemas"]["TaskCreate"]
    plan = schema["properties"]["plan"]["example"]
    network = client.post(NETWORKS, json={"name": "examples"}).get_json()

    response = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Launch email", "plan": plan, "auto_process": False},
    )

    assert response.status_code == 202, response.get_data(as_text=True)


@pytest.mark.parametrize(("path", "status"), ON_A_WAITING_PLAN)
def test_the_examples_of_approve_and_reject_succeed_on_a_plan_awaiting_approval(
    app: Flask, client: ApiClient, document: dict[str, Any], tenant: str, path: str, status: str
) -> None:
    network = client.post(
        NETWORKS, json={"name": "approvers", "config": {"approval": {"plan": True}}}
    ).get_json()
    plan = document["components"]["schemas"]["TaskCreate"]["properties"]["plan"]["example"]
    task = client.post(
        f"{NETWORKS}/{network['id']}/tasks", json={"description": "Launch email", "plan": plan}
    ).get_json()
    # Planned here, as the coordinator's worker would (a client plan: no model is asked).
    app.extensions["mesh"].tenant(tenant).coordination.coordinate(UUID(task["id"]))
    ids = {"network_id": network["id"], "task_id": task["id"]}
    url = TASK.format(**ids)
    assert client.get(url).get_json()["status"] == "awaiting_approval"

    response = client.post(path.format(**ids), json=example_of(document, path))

    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["status"] == status


def test_the_example_of_a_rating_succeeds_on_a_finished_task(
    client: ApiClient, document: dict[str, Any]
) -> None:
    network = client.post(NETWORKS, json={"name": "raters"}).get_json()
    task = client.post(
        f"{NETWORKS}/{network['id']}/tasks", json={"description": "Later", "auto_process": False}
    ).get_json()
    ids = {"network_id": network["id"], "task_id": task["id"]}
    assert client.post(f"{TASK.format(**ids)}/cancel").status_code == 202  # it has ended

    response = client.post(
        ON_A_FINISHED_TASK.format(**ids), json=example_of(document, ON_A_FINISHED_TASK)
    )

    assert response.status_code == 201, response.get_data(as_text=True)
