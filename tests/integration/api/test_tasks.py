"""/api/mesh/networks/{id}/tasks: submit, poll, list, and start a held task."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from flask import Flask

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.network import AgentType
from meshcore.domain.plan import PlannedSubtask, validate_plan
from tests.conftest import DATA_KEYS
from tests.integration.api.client import NETWORKS, ApiClient, assert_error
from tests.integration.api.race import race
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration


def tasks_url(network: dict[str, Any]) -> str:
    return f"{NETWORKS}/{network['id']}/tasks"


def submit(client: ApiClient, network: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = client.post(
        tasks_url(network), json={"description": "Draft the launch email", **body}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def coordinate_messages(record: Record, task_id: str) -> list[str]:
    """The queues holding a `mesh.coordinate` message for the task."""
    return [
        queue
        for queue, message in record.queued()
        if task_id.encode() in message and b'"mesh.coordinate"' in message
    ]


def test_submitting_answers_202_with_a_location_to_poll(
    client: ApiClient, network: dict[str, Any]
) -> None:
    response = client.post(
        tasks_url(network),
        json={
            "description": "Draft the launch email",
            "context": {"audience": "developers"},
            "priority": "high",
            "auto_process": False,
        },
    )

    assert response.status_code == 202
    task = response.get_json()
    assert UUID(task["id"])
    assert response.headers["Location"] == f"{tasks_url(network)}/{task['id']}"
    assert task["network_id"] == network["id"]
    assert task["description"] == "Draft the launch email"
    assert task["context"] == {"audience": "developers"}
    assert task["priority"] == "high"
    assert task["status"] == "queued"
    assert task["iteration"] == 0
    assert task["subtasks"] == []
    assert [(h["kind"], h["status"]) for h in task["history"]] == [("transition", "queued")]
    polled = client.get(response.headers["Location"])
    assert polled.status_code == 200
    assert polled.get_json() == task


def test_a_task_defaults_to_normal_priority_and_an_empty_context(
    client: ApiClient, network: dict[str, Any]
) -> None:
    task = submit(client, network, auto_process=False)

    assert task["priority"] == "normal"
    assert task["context"] == {}


def test_a_task_gets_the_deadline_of_its_network_timeout(client: ApiClient) -> None:
    network = client.post(
        NETWORKS, json={"name": "quick", "config": {"timeout_seconds": 60}}
    ).get_json()

    task = submit(client, network, auto_process=False)

    created, deadline = (datetime.fromisoformat(task[k]) for k in ("created_at", "deadline_at"))
    assert deadline - created == timedelta(seconds=60)


def test_auto_process_enqueues_the_task_for_the_coordinator_at_once(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    task = submit(client, network)

    assert coordinate_messages(record, task["id"]) == ["coordinator"]
    assert task["status"] == "queued"


def test_a_task_held_with_auto_process_false_is_not_enqueued(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    task = submit(client, network, auto_process=False)

    assert coordinate_messages(record, task["id"]) == []
    assert client.get(f"{tasks_url(network)}/{task['id']}").get_json()["status"] == "queued"


def test_processing_a_held_task_answers_202_and_enqueues_it(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    task = submit(client, network, auto_process=False)

    response = client.post(f"{tasks_url(network)}/{task['id']}/process")

    assert response.status_code == 202
    assert response.get_json()["id"] == task["id"]
    assert response.get_json()["status"] == "queued"
    assert coordinate_messages(record, task["id"]) == ["coordinator"]


def test_processing_a_task_that_has_left_the_queue_is_a_conflict(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    task = submit(client, network, auto_process=False)
    record.set_task_status(task["id"], "completed")
    before = record.snapshot()

    response = client.post(f"{tasks_url(network)}/{task['id']}/process")

    assert_error(response, 409, field=f"task {task['id']}", problem="only a queued task")
    assert record.snapshot() == before


def test_a_task_with_a_plan_is_accepted_and_keeps_the_plan(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    plan = [
        {"key": "research", "agent": "research", "description": "Find the facts"},
        {
            "key": "copy",
            "agent": "content",
            "description": "Write the email",
            "depends_on": ["research"],
        },
    ]

    task = submit(client, network, plan=plan, auto_process=False)

    assert task["status"] == "queued"
    assert record.count("tasks", id=task["id"]) == 1


def test_tasks_list_newest_first_a_page_at_a_time(
    client: ApiClient, network: dict[str, Any]
) -> None:
    created = [submit(client, network, auto_process=False)["id"] for _ in range(3)]

    first = client.get(f"{tasks_url(network)}?page=1&page_size=2")
    second = client.get(f"{tasks_url(network)}?page=2&page_size=2")

    assert [t["id"] for t in first.get_json() + second.get_json()] == created[::-1]
    assert json.loads(first.headers["X-Pagination"]) == {
        "total": 3,
        "total_pages": 2,
        "first_page": 1,
        "last_page": 2,
        "page": 1,
        "next_page": 2,
    }
    assert "subtasks" not in first.get_json()[0]


def test_tasks_list_filters_by_status(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    failed, queued = (submit(client, network, auto_process=False) for _ in range(2))
    record.set_task_status(failed["id"], "failed")

    response = client.get(f"{tasks_url(network)}?status=failed")

    assert [t["id"] for t in response.get_json()] == [failed["id"]]
    assert json.loads(response.headers["X-Pagination"])["total"] == 1
    queued_ids = [t["id"] for t in client.get(f"{tasks_url(network)}?status=queued").get_json()]
    assert queued_ids == [queued["id"]]


def test_tasks_of_one_network_are_not_listed_under_another(
    client: ApiClient, network: dict[str, Any]
) -> None:
    submit(client, network, auto_process=False)
    other = client.post(NETWORKS, json={"name": "other"}).get_json()

    assert client.get(tasks_url(other)).get_json() == []


def test_two_concurrent_process_calls_start_a_held_task_once(
    app: Flask, client: ApiClient, network: dict[str, Any], record: Record, engine: sa.Engine
) -> None:
    task = submit(client, network, auto_process=False)
    url = f"{tasks_url(network)}/{task['id']}/process"

    def process() -> int:
        rival = app.test_client()
        rival.error_schema = client.error_schema
        rival.use_key(client.api_key)
        return rival.post(url).status_code

    lock = "SELECT id FROM tasks WHERE id = :id FOR UPDATE"
    statuses = race(engine, lock, {"id": task["id"]}, [process, process])

    assert sorted(statuses) == [202, 409]
    assert coordinate_messages(record, task["id"]) == ["coordinator"]
    assert client.get(f"{tasks_url(network)}/{task['id']}").get_json()["status"] == "queued"


def test_processing_a_task_twice_is_a_conflict_and_enqueues_it_once(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    task = submit(client, network, auto_process=False)
    url = f"{tasks_url(network)}/{task['id']}/process"
    assert client.post(url).status_code == 202

    response = client.post(url)

    assert_error(response, 409, field=f"task {task['id']}", problem="already")
    assert coordinate_messages(record, task["id"]) == ["coordinator"]


def plan_iterations(
    engine: sa.Engine, tenant: str, task_id: str, iterations: int
) -> list[tuple[int, int, str]]:
    """Record a plan for each of the task's first `iterations`, as the coordinator would.

    Answers (iteration, key) of every subtask, in the order a reader should see them.
    """
    uow = SqlUnitOfWorkFactory(engine, Sealer.from_text(DATA_KEYS))
    with uow(tenant) as work:
        # The last iteration first, so that only the read's order puts them right.
        for iteration in range(iterations, 0, -1):
            planned = [
                PlannedSubtask(f"copy-{iteration}", AgentType.CONTENT, "Write it", ("facts",)),
                PlannedSubtask("facts", AgentType.RESEARCH, "Find the facts"),
            ]
            work.tasks.add_plan(
                UUID(task_id), iteration, validate_plan(planned, AgentType), now=datetime.now(UTC)
            )
        work.commit()
    with engine.begin() as db:
        db.execute(
            sa.text("UPDATE tasks SET iteration = :i, status = 'running' WHERE id = :id"),
            {"i": iterations, "id": task_id},
        )
    return [(i, key) for i in range(1, iterations + 1) for key in ("facts", f"copy-{i}")]


def statements_of(engine: sa.Engine, call: Callable[[], object]) -> int:
    """How many SQL statements `call` sends through `engine`."""
    sent = []

    def count(*_: object) -> None:
        sent.append(1)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(sent)


def test_a_task_shows_the_subtasks_of_every_iteration_in_one_query(
    app: Flask, client: ApiClient, network: dict[str, Any], tenant: str, engine: sa.Engine
) -> None:
    once, thrice = (submit(client, network, auto_process=False) for _ in range(2))
    plan_iterations(engine, tenant, once["id"], 1)
    expected = plan_iterations(engine, tenant, thrice["id"], 3)
    app_engine = app.extensions["mesh"].connections.engine

    def read(task: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        return lambda: client.get(f"{tasks_url(network)}/{task['id']}").get_json()

    shown = read(thrice)()
    assert [(s["iteration"], s["key"]) for s in shown["subtasks"]] == expected
    waves = [(s["iteration"], s["wave"]) for s in shown["subtasks"]]
    assert waves == sorted(waves) and len(set(waves)) == len(waves)
    assert statements_of(app_engine, read(thrice)) == statements_of(app_engine, read(once))
