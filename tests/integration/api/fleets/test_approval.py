"""A plan that awaits a person's approval, with real workers on a broker of their own: while it
waits nothing of the task is queued and no step begins; approved as edited, exactly the edited
subtasks run; rejected, it ends cancelled saying why; left alone, it times out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import redis
from flask import Flask

from meshapi.schemas.tasks import TaskSchema
from meshapi.task_json import task_body
from tests.integration.api.client import NETWORKS, ApiClient, assert_error
from tests.integration.api.private_api import BUILTIN_QUEUES
from tests.integration.api.record import queued_messages
from tests.integration.fleet import WorkerSpec

pytestmark = pytest.mark.integration

WORKERS = [
    WorkerSpec("coordinator@approval", ["coordinator"], concurrency=2),
    WorkerSpec("builtin@approval", BUILTIN_QUEUES, concurrency=2),
]
ENDED = ("completed", "failed", "timed_out", "cancelled")
PLAN = [
    {"key": "facts", "agent": "research", "description": "Find Orbit's facts"},
    {
        "key": "email",
        "agent": "content",
        "description": "Write the launch email from the facts",
        "depends_on": ["facts"],
    },
]
EDITED = [
    {"key": "numbers", "agent": "analytics", "description": "Size the trial segment"},
    {"key": "look", "agent": "design", "description": "Lay the email out"},
    {
        "key": "launch-email",
        "agent": "content",
        "description": "Write the launch email for the segment, in that layout",
        "depends_on": ["numbers", "look"],
    },
]


def network(client: ApiClient, timeout_seconds: int = 600) -> dict[str, Any]:
    approval = {"plan": True, "timeout_seconds": timeout_seconds}
    config = {"quality_threshold": 0, "approval": approval}
    response = client.post(NETWORKS, json={"name": "approvers", "config": config})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["config"]["approval"] == approval
    return response.get_json()


def submit(client: ApiClient, made: dict[str, Any]) -> str:
    response = client.post(
        f"{NETWORKS}/{made['id']}/tasks", json={"description": "Launch email", "plan": PLAN}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return str(response.headers["Location"])


def wait_for(client: ApiClient, url: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(url).get_json()
        if task["status"] in statuses:
            return task
        assert task["status"] not in ENDED, task
        time.sleep(0.2)
    raise AssertionError(f"task still {task['status']}, not {statuses}")


def messages_of(broker: redis.Redis, task_id: str) -> list[tuple[str, str]]:
    """(queue, Celery task name) of each message of the task waiting on a queue."""
    found = []
    for queue, _key, message in queued_messages(broker):
        if task_id.encode() in message:
            found.append((queue, json.loads(message)["headers"]["task"]))
    return found


def work(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The specialists' steps begun or recorded: neither the plan nor what follows the work."""
    return [
        h
        for h in task["history"]
        if h["kind"] in ("step_start", "step") and not h["detail"]["subtask"].startswith("@")
    ]


def test_a_waiting_plan_holds_no_worker_and_runs_as_edited_once_approved(
    client: ApiClient, app: Flask, tenant: str, broker: redis.Redis
) -> None:
    url = submit(client, network(client))

    task = wait_for(client, url, "awaiting_approval")

    # Nothing of it waits on any queue (its expiry, with its ETA, is a worker's to hold).
    deadline = time.monotonic() + 10
    while [m for m in messages_of(broker, task["id"]) if m[1] != "mesh.expire"]:
        assert time.monotonic() < deadline, messages_of(broker, task["id"])
        time.sleep(0.1)
    time.sleep(1.5)  # and nothing begins meanwhile
    task = client.get(url).get_json()
    assert task["status"] == "awaiting_approval"
    assert [m for m in messages_of(broker, task["id"]) if m[1] != "mesh.expire"] == []
    assert work(task) == []
    # The plan is shown: as the task's subtasks, and in the event that says it waits.
    assert [(s["key"], s["status"], s["wave"]) for s in task["subtasks"]] == [
        ("facts", "pending", 1),
        ("email", "pending", 2),
    ]
    waiting = task["history"][-1]
    assert (waiting["kind"], waiting["status"]) == ("transition", "awaiting_approval")
    assert [
        (s["key"], s["agent"], s["description"], s["depends_on"], s["wave"])
        for s in waiting["detail"]["subtasks"]
    ] == [(p["key"], p["agent"], p["description"], p.get("depends_on", []), w)
          for p, w in zip(PLAN, (1, 2), strict=True)]  # fmt: skip
    # The hand-built body is the schema's dump in this state too.
    services = app.extensions["mesh"].tenant(tenant)
    read = services.tasks.get(UUID(task["network_id"]), UUID(task["id"]))
    assert task_body(read) == json.loads(json.dumps(TaskSchema().dump(read)))

    # An edited plan the network cannot run is refused, and changes nothing.
    bad = [{**EDITED[0], "agent": "legal"}]
    refused = client.post(f"{url}/approve", json={"plan": bad})
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert "plan" in refused.get_json()["errors"]["json"]
    assert client.get(url).get_json()["revision"] == task["revision"]

    approved = client.post(f"{url}/approve", json={"plan": EDITED})
    assert approved.status_code == 202, approved.get_data(as_text=True)
    assert approved.get_json()["status"] == "running"

    done = wait_for(client, url, *ENDED)
    assert done["status"] == "completed", done["error"]
    ran = {h["detail"]["subtask"] for h in work(done) if h["kind"] == "step"}
    assert ran == {s["key"] for s in EDITED}
    assert [s["key"] for s in done["subtasks"]] == ["numbers", "look", "launch-email"]
    assert {c["subtask"] for c in done["result"]["contributions"]} == ran
    assert client.post(f"{url}/approve", json={}).status_code == 409


def test_a_rejected_plan_ends_the_task_cancelled_with_its_reason(
    client: ApiClient, broker: redis.Redis
) -> None:
    made = network(client)
    url = submit(client, made)
    waiting = wait_for(client, url, "awaiting_approval")
    listed = client.get(
        f"{NETWORKS}/{made['id']}/tasks", query_string={"status": "awaiting_approval"}
    )
    assert [t["id"] for t in listed.get_json()] == [waiting["id"]]
    assert client.get(f"{url}?view=summary").get_json()["status"] == "awaiting_approval"

    rejected = client.post(f"{url}/reject", json={"reason": "Research the pricing first"})

    assert rejected.status_code == 202, rejected.get_data(as_text=True)
    task = rejected.get_json()
    assert task["status"] == "cancelled"
    assert task["error"] == "plan rejected: Research the pricing first"
    assert client.post(f"{url}/reject", json={"reason": "again"}).status_code == 409
    assert client.post(f"{url}/approve", json={}).status_code == 409
    time.sleep(1)
    assert work(client.get(url).get_json()) == []
    stream = client.get(f"{url}/events").get_data(as_text=True)
    assert "event: task.awaiting_approval" in stream
    assert stream.rstrip().splitlines()[-2] == "event: task.cancelled"


def test_a_plan_no_one_approves_in_time_ends_the_task_timed_out(client: ApiClient) -> None:
    url = submit(client, network(client, timeout_seconds=2))
    wait_for(client, url, "awaiting_approval")

    task = wait_for(client, url, "timed_out", timeout=30)

    assert task["error"] == "timed out: no one approved the plan within 2 s"
    assert work(task) == []
    assert client.post(f"{url}/approve", json={}).status_code == 409


@pytest.mark.parametrize(
    ("approval", "field", "problem"),
    [
        ({"plan": True, "timeout_seconds": 0}, "config.approval.timeout_seconds", "equal to 1"),
        ({"timeout_seconds": 604_801}, "config.approval.timeout_seconds", "604800"),
        ({"plan": "sometimes"}, "config.approval.plan", "boolean"),
    ],
)
def test_an_approval_config_out_of_bounds_is_refused_naming_the_field(
    client: ApiClient, approval: dict[str, Any], field: str, problem: str
) -> None:
    response = client.post(NETWORKS, json={"name": "bad", "config": {"approval": approval}})

    assert_error(response, 422, field=field, problem=problem)


def test_a_reason_is_required_and_bounded(client: ApiClient) -> None:
    url = submit(client, network(client))
    wait_for(client, url, "awaiting_approval")

    too_long = {"reason": "x" * 2001}
    for body, problem in (({}, "Missing data"), ({"reason": ""}, "Length"), (too_long, "Length")):
        response = client.post(f"{url}/reject", json=body)
        assert_error(response, 422, field="reason", problem=problem)
    assert client.get(url).get_json()["status"] == "awaiting_approval"


def test_the_sweeper_finds_a_waiting_task_only_once_its_deadline_has_passed(
    client: ApiClient, app: Flask
) -> None:
    url = submit(client, network(client, timeout_seconds=600))
    task = wait_for(client, url, "awaiting_approval")
    finder = app.extensions["mesh"].uow
    now = datetime.now(UTC)

    def found(before: datetime) -> bool:
        return any(str(r.task_id) == task["id"] for r in finder.stalled(before, 10_000))

    assert not found(now + timedelta(seconds=300))  # its heartbeat is old: no matter
    assert found(now + timedelta(seconds=700))  # its approval deadline has passed
