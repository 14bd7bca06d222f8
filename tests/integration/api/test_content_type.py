"""A body must be JSON sent as JSON: any other Content-Type is a 415 that says so, not a 422.

`curl -d '{"name": "x"}'` sends `application/x-www-form-urlencoded`; webargs then read no body
at all and answered "json.name: Missing data for required field." although `name` was sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.api.bad_input import VALID
from tests.integration.api.client import API, NETWORKS, ApiClient, assert_error
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

RESOURCES = ["networks", "agents", "tasks", "memory"]
WRONG_TYPES = [
    None,  # no Content-Type header at all
    "application/x-www-form-urlencoded",  # what `curl -d` sends
    "text/plain",
    "multipart/form-data; boundary=x",
]
SAYS = "Content-Type: application/json"


def collection(resource: str, network: dict[str, Any]) -> str:
    return NETWORKS if resource == "networks" else f"{NETWORKS}/{network['id']}/{resource}"


@pytest.mark.parametrize("content_type", WRONG_TYPES, ids=str)
@pytest.mark.parametrize("resource", RESOURCES)
def test_a_json_body_without_the_json_content_type_is_a_415_that_says_so(
    client: ApiClient,
    record: Record,
    network: dict[str, Any],
    resource: str,
    content_type: str | None,
) -> None:
    before = record.snapshot()
    headers = {"Content-Type": content_type} if content_type else {}

    response = client.post(
        collection(resource, network), data=json.dumps(VALID[resource]), headers=headers
    )

    body = assert_error(response, 415, field=None, problem=SAYS)
    assert "must be JSON" in body["message"]
    assert "Missing data" not in response.get_data(as_text=True)
    assert record.snapshot() == before


def test_an_empty_body_without_a_content_type_is_a_415(client: ApiClient, record: Record) -> None:
    before = record.snapshot()

    response = client.post(NETWORKS)

    assert_error(response, 415, field=None, problem=SAYS)
    assert record.snapshot() == before


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.mesh+json"]
)
def test_json_content_types_with_parameters_or_a_suffix_are_accepted(
    client: ApiClient, content_type: str
) -> None:
    response = client.post(
        NETWORKS, data=json.dumps({"name": "typed"}), headers={"Content-Type": content_type}
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["name"] == "typed"


def test_a_body_that_is_not_json_is_a_400_saying_so(client: ApiClient, record: Record) -> None:
    before = record.snapshot()

    response = client.post(NETWORKS, data="name=x", content_type="application/json")

    body = assert_error(response, 400, field="json", problem="not valid JSON")
    assert "Missing data" not in body["message"]
    assert record.snapshot() == before


def test_a_post_without_a_body_needs_no_content_type(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    url = f"{NETWORKS}/{queued_task['network_id']}/tasks/{queued_task['id']}/process"

    assert client.post(url).status_code == 202


def test_every_operation_with_a_body_documents_the_415(client: ApiClient) -> None:
    document = client.get(f"{API}/openapi.json").get_json()
    with_body = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]

    # networks, agents, memory, tasks, keys, agent types (2), approve and reject a plan, and
    # rate a task
    assert len(with_body) == 10
    for path, method, operation in with_body:
        unsupported = operation["responses"].get("415")
        assert unsupported, f"{method} {path} does not document 415"
        assert unsupported["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
        assert SAYS in unsupported["description"]
