"""GET /metrics on the API: request counts by route template, and the fleet's queue gauges."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api.client import NETWORKS, ApiClient

pytestmark = pytest.mark.integration

TASK_ROUTE = "/api/mesh/networks/<id(network):network_id>/tasks/<id(task):task_id>"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def scrape(client: ApiClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_never_by_id(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    path = f"{NETWORKS}/{queued_task['network_id']}/tasks/{queued_task['id']}"
    labels = {"route": TASK_ROUTE, "method": "GET", "status": "200"}
    not_found = {**labels, "status": "404"}
    first = scrape(client)

    for _ in range(3):
        assert client.get(path).status_code == 200
    assert client.get(f"{NETWORKS}/{queued_task['network_id']}/tasks/{uuid4()}").status_code == 404

    samples = scrape(client)
    assert (
        value(samples, "mesh_http_requests_total", **labels)
        == value(first, "mesh_http_requests_total", **labels) + 3
    )
    assert (
        value(samples, "mesh_http_requests_total", **not_found)
        == value(first, "mesh_http_requests_total", **not_found) + 1
    )
    assert (
        value(samples, "mesh_http_request_duration_seconds_count", route=TASK_ROUTE, method="GET")
        >= 3
    )
    assert not any(UUID.search(v) for _, ls in samples for _, v in ls)


def test_a_waiting_task_shows_on_the_coordinator_queue(
    client: ApiClient, network: dict[str, Any]
) -> None:
    before = value(scrape(client), "mesh_queue_depth", queue="coordinator")
    submitted = client.post(f"{NETWORKS}/{network['id']}/tasks", json={"description": "Go"})
    assert submitted.status_code == 202

    samples = scrape(client)
    # No worker runs in these tests: the message waits where the workers would take it.
    assert value(samples, "mesh_queue_depth", queue="coordinator") == before + 1
    assert value(samples, "mesh_queue_oldest_message_age_seconds", queue="coordinator") >= 0
    assert value(samples, "mesh_queue_depth", queue="agent.critic") == 0
    assert value(samples, "mesh_tasks_submitted_total") >= 1
    assert value(samples, "mesh_breaker_state", model="openai/gpt-4o") == 0
