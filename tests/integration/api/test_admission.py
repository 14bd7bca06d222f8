"""Admission control on real Redis: while more than MESH_MAX_BACKLOG messages wait on the task
queues, a submit (or a process) is a 503 with Retry-After in Mesh's error shape and stores
nothing; a retry of a task already accepted is still answered with it; once the queues drain,
tasks are taken again.

The backlog is made of stand-in messages pushed onto a coordinator list of the test Redis
db; no worker runs in these tests to take them, and each test removes its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
import redis
from flask import Flask
from werkzeug.test import TestResponse

from meshcore.adapters.celery_dispatch import PRIORITY_STEPS
from meshcore.adapters.redis_gauges import priority_lists
from meshcore.services.admission import CACHE_SECONDS
from meshcore.settings import Settings
from tests.integration.api.client import NETWORKS, ApiClient, assert_error, bearer, new_key
from tests.integration.api.record import Record, purge_queued

pytestmark = pytest.mark.integration

BOUND = 20
# The list of new low-priority tasks: where a burst of submits would pile up.
COORDINATOR_LIST = priority_lists("coordinator", PRIORITY_STEPS)[-1]


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_backlog": BOUND})


def past_the_cache() -> None:
    """Wait until the admission's last depth is stale: the next submit reads Redis anew."""
    time.sleep(CACHE_SECONDS + 0.1)


@pytest.fixture
def backlog(redis_client: redis.Redis, tenant: str) -> Iterator[Callable[[int], None]]:
    """Put `n` stand-in messages on the coordinator queue; `n` = 0 takes them away again."""
    # The tenant in each message: the record's purge removes them too, should this fail.
    marker = f"admission-test-{uuid4().hex[:8]}-{tenant}"

    def fill(n: int) -> None:
        purge_queued(redis_client, marker)
        if n:
            redis_client.lpush(COORDINATOR_LIST, *(f"{marker}-{i}" for i in range(n)))
        past_the_cache()

    yield fill
    purge_queued(redis_client, marker)


def tasks_of(network: dict[str, Any]) -> str:
    return f"{NETWORKS}/{network['id']}/tasks"


def assert_overloaded(response: TestResponse) -> int:
    """A 503 in the error shape that says Mesh is overloaded and when to retry."""
    body = assert_error(response, 503, field=None, problem="Mesh is overloaded")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert f"retry after {retry_after} s" in body["message"]
    assert f"bound of {BOUND}" in body["message"]
    return retry_after


def test_a_submit_past_the_bound_is_503_with_retry_after_and_stores_nothing(
    client: ApiClient,
    network: dict[str, Any],
    record: Record,
    backlog: Callable[[int], None],
) -> None:
    listed = client.get(tasks_of(network)).get_json()
    backlog(BOUND + 300)
    before = record.snapshot()

    refused = client.post(tasks_of(network), json={"description": "Launch email"})

    assert assert_overloaded(refused) >= 3  # 300 messages past the bound, 100 a second
    assert record.snapshot() == before
    assert client.get(tasks_of(network)).get_json() == listed

    backlog(0)
    accepted = client.post(tasks_of(network), json={"description": "Launch email"})
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    assert len(client.get(tasks_of(network)).get_json()) == len(listed) + 1


def test_another_tenants_key_gets_404_for_the_network_and_stores_nothing(
    app: Flask,
    client: ApiClient,
    network: dict[str, Any],
    other_tenant: str,
    record: Record,
    backlog: Callable[[int], None],
) -> None:
    backlog(0)
    before = record.snapshot()

    foreign = client.post(
        tasks_of(network),
        json={"description": "Launch email"},
        headers=bearer(new_key(app, other_tenant)),
    )

    assert_error(foreign, 404, field=None, problem="not found")
    assert record.snapshot() == before


def test_processing_a_held_task_past_the_bound_is_503_and_it_stays_held(
    client: ApiClient,
    network: dict[str, Any],
    queued_task: dict[str, Any],
    record: Record,
    backlog: Callable[[int], None],
) -> None:
    process = f"{tasks_of(network)}/{queued_task['id']}/process"
    backlog(BOUND + 1)
    before = record.snapshot()

    assert_overloaded(client.post(process))
    assert record.snapshot() == before

    backlog(0)
    assert client.post(process).status_code == 202


def test_approving_a_plan_past_the_bound_is_503_and_the_task_keeps_waiting(
    client: ApiClient,
    network: dict[str, Any],
    queued_task: dict[str, Any],
    record: Record,
    backlog: Callable[[int], None],
) -> None:
    record.set_task_status(queued_task["id"], "awaiting_approval")  # as its planner left it
    approve = f"{tasks_of(network)}/{queued_task['id']}/approve"
    plan = [{"key": "facts", "agent": "research", "description": "Find the facts"}]
    backlog(BOUND + 1)
    before = record.snapshot()

    assert_overloaded(client.post(approve, json={"plan": plan}))
    assert record.snapshot() == before

    backlog(0)
    approved = client.post(approve, json={"plan": plan})
    assert approved.status_code == 202, approved.get_data(as_text=True)
    assert approved.get_json()["status"] == "running"


def test_a_retry_of_an_accepted_submit_is_answered_past_the_bound_and_a_new_one_refused(
    client: ApiClient,
    network: dict[str, Any],
    record: Record,
    backlog: Callable[[int], None],
) -> None:
    body = {"description": "Launch email", "auto_process": False}
    first = client.post(tasks_of(network), json=body, headers={"Idempotency-Key": "launch-1"})
    assert first.status_code == 202, first.get_data(as_text=True)
    backlog(BOUND + 1)
    before = record.snapshot()

    retried = client.post(tasks_of(network), json=body, headers={"Idempotency-Key": "launch-1"})
    new = client.post(tasks_of(network), json=body, headers={"Idempotency-Key": "launch-2"})

    assert retried.status_code == 202
    assert retried.get_json()["id"] == first.get_json()["id"]
    assert_overloaded(new)
    assert record.snapshot() == before  # launch-2 was not taken: the client may retry with it

    backlog(0)
    again = client.post(tasks_of(network), json=body, headers={"Idempotency-Key": "launch-2"})
    assert again.status_code == 202
    assert again.get_json()["id"] != first.get_json()["id"]
