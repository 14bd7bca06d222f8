"""Bad input answers a 4xx JSON error naming the field and the problem, and changes nothing.

Each case sends one bad request to a tenant holding a network (the default team) and a held
task, then compares all the tenant has stored, in Postgres, Redis and the Celery queues,
with what it had before. The client checks every error body against the Error schema.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest

from tests.integration.api import bad_input
from tests.integration.api.bad_input import VALID, body_of, subtask
from tests.integration.api.client import NETWORKS, ApiClient, assert_error
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

RESOURCES = ["networks", "agents", "tasks", "memory"]
CASE = ("resource", "changes", "field", "problem")


def collection(resource: str, network: dict[str, Any]) -> str:
    return NETWORKS if resource == "networks" else f"{NETWORKS}/{network['id']}/{resource}"


def rejected(
    client: ApiClient,
    record: Record,
    method: str,
    url: str,
    *,
    status: int,
    field: str | None,
    problem: str,
    **request: Any,
) -> dict[str, Any]:
    """Send the request; it must fail as said and leave the tenant's record as it was."""
    before = record.snapshot()
    response = client.open(url, method=method, **request)
    body = assert_error(response, status, field=field, problem=problem)
    assert record.snapshot() == before
    return body


def post_rejected(
    client: ApiClient,
    record: Record,
    network: dict[str, Any],
    resource: str,
    changes: dict[str, Any],
    *,
    field: str,
    problem: str,
    status: int = 422,
) -> dict[str, Any]:
    url, body = collection(resource, network), body_of(resource, changes)
    return rejected(
        client, record, "POST", url, status=status, field=field, problem=problem, json=body
    )


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    "text",
    ["{", '{"name": }', "{'name': 'x'}", '{"name": "x",}', b'{"\xff": 1}'],
    ids=["unclosed", "no-value", "single-quotes", "trailing-comma", "not-utf8"],
)
def test_malformed_json_is_a_400(
    client: ApiClient, record: Record, network: dict[str, Any], resource: str, text: str
) -> None:
    url = collection(resource, network)
    request = {"data": text, "content_type": "application/json"}
    rejected(
        client, record, "POST", url, status=400, field="json", problem="Invalid JSON", **request
    )


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("text", ["[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_is_a_422(
    client: ApiClient, record: Record, network: dict[str, Any], resource: str, text: str
) -> None:
    url = collection(resource, network)
    request = {"data": text, "content_type": "application/json"}
    rejected(
        client, record, "POST", url, status=422, field="json", problem="Invalid input", **request
    )


def test_a_body_over_one_mebibyte_is_a_413(
    client: ApiClient, record: Record, network: dict[str, Any]
) -> None:
    body = {"description": "d", "context": {"padding": "x" * (1024 * 1024)}}
    url = collection("tasks", network)
    rejected(client, record, "POST", url, status=413, field=None, problem="limit", json=body)


@pytest.mark.parametrize(CASE, bad_input.BAD_BODIES)
def test_a_bad_body_is_a_422_naming_the_field_and_the_problem(
    client: ApiClient,
    record: Record,
    network: dict[str, Any],
    resource: str,
    changes: dict[str, Any],
    field: str,
    problem: str,
) -> None:
    post_rejected(client, record, network, resource, changes, field=field, problem=problem)


BAD_QUERIES = [
    ("", "page=0", "page", "greater than or equal to 1"),
    ("", "page=two", "page", "Not a valid integer"),
    # Past a million pages: before, the offset overflowed Postgres's bigint and answered 500.
    ("", "page=116486072576075955100", "page", "less than or equal to 1000000"),
    ("/{network}/tasks", "page=1000001", "page", "less than or equal to 1000000"),
    ("", "page_size=0", "page_size", "greater than or equal to 1"),
    ("", "page_size=101", "page_size", "less than or equal to 100"),
    ("/{network}/tasks", "page_size=1000", "page_size", "less than or equal to 100"),
    ("/{network}/tasks", "status=lost", "status", "Must be one of: queued"),
    ("/{network}/memory", "type=rumour", "type.0", "Must be one of: fact"),
    ("/{network}/memory", "min_confidence=1.5", "min_confidence", "less than or equal to 1"),
    ("/{network}/memory", "min_confidence=-1", "min_confidence", "greater than or equal"),
    ("/{network}/memory", "page_size=0", "page_size", "greater than or equal to 1"),
    ("/{network}/memory", "page_size=101", "page_size", "less than or equal to 100"),
    ("/{network}/memory", "page=many", "page", "Not a valid integer"),
    ("/{network}/memory", "task_id=not-an-id", "task_id", "Not a valid UUID"),
]


@pytest.mark.parametrize(
    ("path", "query", "field", "problem"),
    BAD_QUERIES,
    ids=[f"{path.rsplit('/', 1)[-1] or 'networks'}?{query}" for path, query, *_ in BAD_QUERIES],
)
def test_a_bad_query_parameter_is_a_422_naming_it(
    client: ApiClient,
    record: Record,
    network: dict[str, Any],
    path: str,
    query: str,
    field: str,
    problem: str,
) -> None:
    url = f"{NETWORKS}{path.format(network=network['id'])}?{query}"
    body = rejected(client, record, "GET", url, status=422, field=field, problem=problem)
    assert "query" in body["errors"]


@pytest.mark.parametrize(("plan", "problem"), bad_input.PLANS)
def test_a_plan_the_network_cannot_run_is_a_422_naming_the_plan(
    client: ApiClient, record: Record, network: dict[str, Any], plan: list[Any], problem: str
) -> None:
    post_rejected(client, record, network, "tasks", {"plan": plan}, field="plan", problem=problem)


def test_a_plan_naming_an_agent_the_network_lacks_is_a_422(
    client: ApiClient, record: Record
) -> None:
    team = [{"type": "coordinator"}, {"type": "content"}, {"type": "critic"}]
    network = client.post(NETWORKS, json={"name": "small", "agents": team}).get_json()
    plan = [subtask(key="look", agent="research")]
    problem = "the network has no research agent"
    post_rejected(client, record, network, "tasks", {"plan": plan}, field="plan", problem=problem)


def test_a_blank_subtask_description_is_a_422_naming_the_subtask(
    client: ApiClient, record: Record, network: dict[str, Any]
) -> None:
    changes = {"plan": [subtask(description="   ")]}
    field, problem = "plan.0.description", "must not be empty"
    post_rejected(client, record, network, "tasks", changes, field=field, problem=problem)


def test_a_network_without_a_coordinator_is_refused_before_it_can_take_a_task(
    client: ApiClient, record: Record
) -> None:
    body = {"name": "x", "agents": [{"type": "content"}, {"type": "critic"}]}
    rejected(
        client, record, "POST", NETWORKS, status=422, field="agents", problem="coordinator",
        json=body,
    )  # fmt: skip


ROUTES = [
    ("GET", "/{network}"),
    ("DELETE", "/{network}"),
    ("GET", "/{network}/tasks"),
    ("POST", "/{network}/tasks"),
    ("GET", "/{network}/tasks/{task}"),
    ("POST", "/{network}/tasks/{task}/process"),
    ("GET", "/{network}/agents"),
    ("POST", "/{network}/agents"),
    ("DELETE", "/{network}/agents/{agent}"),
    ("GET", "/{network}/memory"),
    ("POST", "/{network}/memory"),
]


def id_slots() -> list[Any]:
    """(method, route, the id made bad) for each id of each route."""
    return [
        pytest.param(method, route, slot, id=f"{method} {route} {slot}")
        for method, route in ROUTES
        for slot in re.findall(r"{(\w+)}", route)
    ]


def route_request(
    method: str, route: str, ids: dict[str, str]
) -> tuple[str, dict[str, Any] | None]:
    """The URL with `ids` filled in, and a valid body if the route takes one."""
    resource = route.rsplit("/", 1)[-1]
    body = VALID[resource] if method == "POST" and resource in VALID else None
    return NETWORKS + route.format(**ids), body


@pytest.fixture
def ids(network: dict[str, Any], queued_task: dict[str, Any]) -> dict[str, str]:
    """Ids that exist: the network, its held task and its critic."""
    return {
        "network": network["id"],
        "task": queued_task["id"],
        "agent": network["agents"][-1]["id"],
    }


@pytest.mark.parametrize(("method", "route", "slot"), id_slots())
def test_an_id_that_is_not_an_id_is_a_404_naming_it(
    client: ApiClient, record: Record, ids: dict[str, str], method: str, route: str, slot: str
) -> None:
    url, body = route_request(method, route, {**ids, slot: "not-an-id"})
    field, problem = f"{slot}_id", "'not-an-id' is not a valid id"
    rejected(client, record, method, url, status=404, field=field, problem=problem, json=body)


@pytest.mark.parametrize("bad", ["42", "0" * 32 + "0", "urn:uuid:nope", "%20", "g" * 36])
def test_near_ids_are_not_ids(client: ApiClient, record: Record, bad: str) -> None:
    url = f"{NETWORKS}/{bad}"
    rejected(client, record, "GET", url, status=404, field="network_id", problem="not a valid id")


@pytest.mark.parametrize(("method", "route", "slot"), id_slots())
def test_an_id_that_does_not_exist_is_a_404_naming_it(
    client: ApiClient, record: Record, ids: dict[str, str], method: str, route: str, slot: str
) -> None:
    missing = str(uuid4())
    url, body = route_request(method, route, {**ids, slot: missing})
    field = f"{slot} {missing}"
    rejected(client, record, method, url, status=404, field=field, problem="not found", json=body)


@pytest.mark.parametrize(
    ("method", "route", "slot"),
    [
        ("GET", "/{network}/tasks/{task}", "task"),
        ("POST", "/{network}/tasks/{task}/process", "task"),
        ("DELETE", "/{network}/agents/{agent}", "agent"),
    ],
)
def test_a_task_or_agent_of_another_network_is_a_404(
    client: ApiClient, record: Record, ids: dict[str, str], method: str, route: str, slot: str
) -> None:
    other = client.post(NETWORKS, json={"name": "other"}).get_json()
    url, body = route_request(method, route, {**ids, "network": other["id"]})
    field = f"{slot} {ids[slot]}"
    rejected(client, record, method, url, status=404, field=field, problem="not found", json=body)


UNKNOWN_ROUTES = [
    ("GET", "/api/mesh/nothing", 404),
    ("GET", "/nothing", 404),
    ("POST", "/api/mesh", 404),
    ("GET", f"{NETWORKS}/", 404),
    ("GET", f"{NETWORKS}/{{network}}/tasks/{{task}}/result", 404),
    ("PUT", NETWORKS, 405),
    ("DELETE", NETWORKS, 405),
    ("PATCH", f"{NETWORKS}/{{network}}", 405),
    ("PUT", f"{NETWORKS}/{{network}}/tasks/{{task}}", 405),
    ("DELETE", f"{NETWORKS}/{{network}}/tasks/{{task}}", 405),
    ("GET", f"{NETWORKS}/{{network}}/tasks/{{task}}/process", 405),
    ("POST", f"{NETWORKS}/{{network}}/agents/{{agent}}", 405),
    ("DELETE", f"{NETWORKS}/{{network}}/memory", 405),
    ("POST", "/healthz", 405),
    ("DELETE", "/api/mesh/openapi.json", 405),
]


@pytest.mark.parametrize(("method", "path", "status"), UNKNOWN_ROUTES)
def test_unknown_routes_and_methods_answer_json(
    client: ApiClient, record: Record, ids: dict[str, str], method: str, path: str, status: int
) -> None:
    problem = "not found" if status == 404 else "method is not allowed"
    url = path.format(**ids)
    rejected(client, record, method, url, status=status, field=None, problem=problem, json={})


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", NETWORKS, {"GET", "HEAD", "OPTIONS", "POST"}),
        ("PATCH", f"{NETWORKS}/{{network}}", {"GET", "HEAD", "OPTIONS", "DELETE"}),
    ],
    ids=["PUT networks", "PATCH network"],
)
def test_a_405_says_which_methods_are_allowed(
    client: ApiClient, ids: dict[str, str], method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(path.format(**ids), method=method)

    assert response.status_code == 405
    assert set(response.headers.get("Allow", "").split(", ")) == allowed


@pytest.mark.parametrize(
    ("resource", "changes"),
    [
        ("tasks", {"context": {"budget": float("nan")}}),
        ("tasks", {"context": {"reach": {"max": float("inf")}}}),
        ("memory", {"metadata": {"score": float("-inf")}}),
    ],
)
def test_a_non_finite_number_in_free_form_json_is_rejected(
    client: ApiClient,
    record: Record,
    network: dict[str, Any],
    resource: str,
    changes: dict[str, Any],
) -> None:
    before = record.snapshot()

    response = client.post(collection(resource, network), json=body_of(resource, changes))

    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    assert record.snapshot() == before


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 5_000 + "1" + "}" * 5_000],
    ids=["arrays", "objects"],
)
def test_json_nested_too_deep_is_a_400(client: ApiClient, record: Record, text: str) -> None:
    request = {"data": text, "content_type": "application/json"}
    rejected(client, record, "POST", NETWORKS, status=400, field="json", problem="JSON", **request)


@pytest.mark.parametrize(CASE, bad_input.FIRST_ITEMS)
def test_the_message_names_the_first_item_of_a_list_by_its_index(
    client: ApiClient,
    record: Record,
    network: dict[str, Any],
    resource: str,
    changes: dict[str, Any],
    field: str,
    problem: str,
) -> None:
    body = post_rejected(client, record, network, resource, changes, field=field, problem=problem)

    assert body["message"].startswith(f"json.{field}: "), body["message"]
