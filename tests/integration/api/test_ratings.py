"""POST and GET .../tasks/{tid}/rating on real Postgres and Redis: a client rates a finished
task, memory learns from it, and the scrape carries the seed's three quality figures.

Tasks run in this process: the dispatcher is a fake that delivers the messages here, to the
offline model, when a test drains it (in_process.py, as test_task_json.py has it).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from meshcore.bootstrap import Services
from meshcore.domain.keys import Scope
from tests.integration.api.client import (
    NETWORKS,
    ApiClient,
    assert_error,
    bearer,
    new_key,
)
from tests.integration.api.in_process import app as app
from tests.integration.api.in_process import run
from tests.integration.api.in_process import services as services
from tests.integration.api.in_process import settings as settings
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

Json = dict[str, Any]
ONE_STEP = [{"key": "facts", "agent": "research", "description": "Find Orbit's facts"}]


def rating_url(task: Json) -> str:
    return f"{NETWORKS}/{task['network_id']}/tasks/{task['id']}/rating"


def history_url(task: Json, item_id: str) -> str:
    return f"{NETWORKS}/{task['network_id']}/memory/{item_id}/history"


@pytest.fixture
def fact(client: ApiClient, network: Json) -> Json:
    """A fact a client wrote, sure enough for the steps to read and short of the ceiling."""
    response = client.post(
        f"{NETWORKS}/{network['id']}/memory",
        json={"type": "fact", "content": "Orbit costs $4.99 a month", "confidence": 0.6},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def finished(app: Flask, client: ApiClient, network: Json, fact: Json, services: Services) -> Json:
    """A task run to its end whose step read `fact`."""
    response = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Write the launch email for Orbit", "plan": ONE_STEP},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    run(app, services)
    task = client.get(response.headers["Location"]).get_json()
    assert task["status"] in ("completed", "failed"), task["status"]
    read = {i for s in task["subtasks"] if s["step"] for i in s["step"]["memory_read"]}
    assert fact["id"] in read
    return task


def confidence_of(client: ApiClient, task: Json, item_id: str) -> tuple[float, list[Json]]:
    history = client.get(history_url(task, item_id))
    assert history.status_code == 200, history.get_data(as_text=True)
    body = history.get_json()
    return body["confidence"], [c for c in body["changes"] if c["source"] == "rating"]


def test_a_rating_of_1_lowers_what_the_task_relied_on_and_says_why(
    client: ApiClient, finished: Json, fact: Json
) -> None:
    before, _ = confidence_of(client, finished, fact["id"])

    response = client.post(rating_url(finished), json={"score": 1, "comment": "Wrong price"})

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["task_id"], body["score"], body["comment"]) == (finished["id"], 1, "Wrong price")
    after, changes = confidence_of(client, finished, fact["id"])
    assert after < before
    assert [(c["reason"], c["task_id"], c["before"], c["after"]) for c in changes] == [
        (f"client rated task {finished['id']} 1/5", finished["id"], before, after)
    ]


def test_a_rating_of_5_raises_it_and_a_change_of_mind_moves_it_by_the_difference(
    client: ApiClient, finished: Json, fact: Json
) -> None:
    start, _ = confidence_of(client, finished, fact["id"])

    first = client.post(rating_url(finished), json={"score": 5})
    raised, _ = confidence_of(client, finished, fact["id"])
    again = client.post(rating_url(finished), json={"score": 5})
    unchanged, _ = confidence_of(client, finished, fact["id"])
    changed = client.post(rating_url(finished), json={"score": 3, "comment": "On reflection"})
    back, changes = confidence_of(client, finished, fact["id"])

    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 200)
    assert raised > start and unchanged == raised
    assert back < raised  # 5 -> 3 takes back the +1 as a -1: damped, not to the exact start
    assert [c["reason"] for c in changes] == [
        f"client rated task {finished['id']} 5/5",
        f"client rated task {finished['id']} 3/5",
    ]
    assert changed.get_json()["comment"] == "On reflection"
    assert changed.get_json()["created_at"] == first.get_json()["created_at"]


def test_the_rating_is_a_feedback_item_in_the_networks_memory(
    client: ApiClient, finished: Json
) -> None:
    client.post(rating_url(finished), json={"score": 4, "comment": "Clear; name the price"})

    memory = client.get(
        f"{NETWORKS}/{finished['network_id']}/memory",
        query_string={"type": "feedback", "task_id": finished["id"], "page_size": 100},
    ).get_json()

    rated = [m for m in memory if m["metadata"].get("source") == "rating"]
    assert [(m["content"], m["confidence"]) for m in rated] == [
        (f"A client rated task {finished['id']} 4/5: Clear; name the price", 1.0)
    ]


def test_the_rating_reads_back_and_a_task_never_rated_has_none(
    client: ApiClient, finished: Json
) -> None:
    missing = client.get(rating_url(finished))
    assert_error(missing, 404, field=None, problem="not found")

    posted = client.post(rating_url(finished), json={"score": 4}).get_json()
    read = client.get(rating_url(finished))

    assert read.status_code == 200
    assert read.get_json() == posted
    assert posted["comment"] is None


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({}, "score", "Missing data"),
        ({"score": 0}, "score", "greater than or equal to 1"),
        ({"score": 6}, "score", "less than or equal to 5"),
        ({"score": 4.5}, "score", "Not a valid integer"),
        ({"score": "5"}, "score", "Not a valid integer"),
        ({"score": True}, "score", "Not a valid integer"),
        ({"score": 5, "comment": ""}, "comment", "Must not be empty"),
        ({"score": 5, "comment": "x" * 2001}, "comment", "between 1 and 2000"),
        ({"score": 5, "mood": "happy"}, "mood", "Unknown field"),
    ],
)
def test_a_bad_rating_names_its_field_and_changes_nothing(
    client: ApiClient, record: Record, finished: Json, body: Json, field: str, problem: str
) -> None:
    before = record.snapshot()

    response = client.post(rating_url(finished), json=body)

    assert_error(response, 422, field=field, problem=problem)
    assert record.snapshot() == before


def test_a_task_that_has_not_finished_cannot_be_rated(
    client: ApiClient, record: Record, queued_task: Json
) -> None:
    before = record.snapshot()

    response = client.post(rating_url(queued_task), json={"score": 5})

    assert_error(response, 409, field=None, problem="only a finished task")
    assert record.snapshot() == before


def test_a_cancelled_task_can_be_rated(client: ApiClient, queued_task: Json) -> None:
    task_url = f"{NETWORKS}/{queued_task['network_id']}/tasks/{queued_task['id']}"
    assert client.post(f"{task_url}/cancel").status_code == 202

    assert client.post(rating_url(queued_task), json={"score": 2}).status_code == 201


def test_another_tenants_key_finds_no_task_to_rate(
    app: Flask, client: ApiClient, record: Record, finished: Json
) -> None:
    other = new_key(app, f"{record.tenant}-other")
    before = record.snapshot()

    posted = client.post(rating_url(finished), json={"score": 1}, headers=bearer(other))
    read = client.get(rating_url(finished), headers=bearer(other))

    assert_error(posted, 404, field=None, problem="not found")
    assert_error(read, 404, field=None, problem="not found")
    assert record.snapshot() == before


def test_a_task_of_another_network_is_not_found(client: ApiClient, finished: Json) -> None:
    other = client.post(NETWORKS, json={"name": "elsewhere"}).get_json()

    response = client.post(rating_url({**finished, "network_id": other["id"]}), json={"score": 5})

    assert_error(response, 404, field=None, problem="not found")


def test_a_read_only_key_may_read_a_rating_but_not_rate(
    app: Flask, client: ApiClient, finished: Json, tenant: str
) -> None:
    reader = new_key(app, tenant, frozenset({Scope.READ}))
    client.post(rating_url(finished), json={"score": 4})

    assert client.get(rating_url(finished), headers=bearer(reader)).status_code == 200
    refused = client.post(rating_url(finished), json={"score": 1}, headers=bearer(reader))
    assert_error(refused, 403, field=None, problem="write scope")


def test_rating_is_audited_with_the_task_as_its_resource(client: ApiClient, finished: Json) -> None:
    client.post(rating_url(finished), json={"score": 5})

    events = client.get("/api/mesh/audit", query_string={"page_size": 5}).get_json()

    rated = [e for e in events if e["route"].endswith("/rating")]
    assert rated[0]["route"] == "/api/mesh/networks/{network_id}/tasks/{task_id}/rating"
    assert (rated[0]["method"], rated[0]["status"]) == ("POST", 201)
    assert rated[0]["resource_id"] == finished["id"]


def test_the_scrape_carries_the_three_quality_figures(client: ApiClient, finished: Json) -> None:
    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = client.get("/metrics").get_data(as_text=True)
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    before = scrape()
    client.post(rating_url(finished), json={"score": 5})
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("mesh_task_rating_count") == 1
    assert delta("mesh_task_rating_sum") == 5
    assert delta("mesh_task_rating_bucket", le="4.0") == 0
    assert delta("mesh_task_rating_bucket", le="5.0") == 1
    # Completion by status and memory confidence: this task ended, and wrote memory, here.
    assert any(name == "mesh_tasks_total" and dict(labels).get("status") for name, labels in after)
    assert after[("mesh_memory_confidence_count", (("type", "feedback"),))] >= 1


def test_the_rating_routes_are_in_the_openapi_document(client: ApiClient) -> None:
    document = client.get("/api/mesh/openapi.json").get_json()

    path = document["paths"]["/api/mesh/networks/{network_id}/tasks/{task_id}/rating"]
    assert set(path["post"]["responses"]) >= {"200", "201", "404", "409", "415", "422"}
    assert set(path["get"]["responses"]) >= {"200", "404"}
