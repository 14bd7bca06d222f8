"""What a newcomer reads of a run on the offline model, through the API and real workers.

Real Celery workers (`mesh worker`) on a private redis-server, real Postgres, the network's
defaults (quality_threshold 0.8, max_iterations 3): the answer shows each specialist's part,
the critic's feedback is about the task, some tasks are revised and others are not, and each
step says truly what it read and where it ran.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshcore.domain.agent_types import own_queue
from meshcore.domain.network import SPECIALISTS, AgentType
from tests.drills.harness import PrivateRedis
from tests.integration.api.client import NETWORKS, ApiClient
from tests.integration.api.private_api import keyed_client
from tests.integration.api.record import Record
from tests.integration.fleet import Fleet, WorkerSpec
from tests.task_descriptions import TASK_DESCRIPTIONS

pytestmark = pytest.mark.integration

COORDINATOR = "coordinator@offline-run"
AGENTS = "agents@offline-run"
CRITIC = "critic@offline-run"
TASKS = TASK_DESCRIPTIONS[:8]
DREW_ON = re.compile(r"Drew on (\d+) shared memory item\(s\)")
WORKERS = [
    WorkerSpec(COORDINATOR, ["coordinator"], concurrency=4),
    WorkerSpec(AGENTS, [own_queue(t) for t in SPECIALISTS], concurrency=8),
    WorkerSpec(CRITIC, [own_queue(AgentType.CRITIC)], concurrency=4),
]


@pytest.fixture(scope="module")
def finished(
    workers: Fleet,
    app: Flask,
    error_schema: dict[str, Any],
    engine: sa.Engine,
    private_redis: PrivateRedis,
    tenant: str,
) -> Iterator[list[dict[str, Any]]]:
    """Each of TASKS, submitted over HTTP to one default network, read back once it ended."""
    try:
        yield run_all(keyed_client(app, error_schema, tenant))
    finally:
        Record(engine, redis.Redis.from_url(private_redis.url), tenant).purge()


def run_all(client: ApiClient) -> list[dict[str, Any]]:
    network = client.post(NETWORKS, json={"name": "offline-run"}).get_json()
    assert (network["config"]["quality_threshold"], network["config"]["max_iterations"]) == (
        0.8,
        3,
    )
    urls = []
    for description in TASKS:
        response = client.post(
            f"{NETWORKS}/{network['id']}/tasks", json={"description": description}
        )
        assert response.status_code == 202, response.get_data(as_text=True)
        urls.append(response.headers["Location"])
    deadline, tasks = time.monotonic() + 180, []
    while time.monotonic() < deadline:
        tasks = [client.get(url).get_json() for url in urls]
        if all(t["status"] in ("completed", "failed", "timed_out") for t in tasks):
            return tasks
        time.sleep(0.5)
    raise AssertionError(f"still running: {[(t['status'], t['iteration']) for t in tasks]}")


def test_every_task_completes(finished: list[dict[str, Any]]) -> None:
    assert [t["status"] for t in finished] == ["completed"] * len(TASKS), [
        t.get("error") for t in finished
    ]


def test_with_the_default_threshold_some_tasks_are_revised_and_others_are_not(
    finished: list[dict[str, Any]],
) -> None:
    iterations = [t["iteration"] for t in finished]

    assert 1 in iterations, iterations
    assert any(i >= 2 for i in iterations), iterations
    for task in finished:
        revisions = [h for h in task["history"] if h["detail"].get("reason") == "revision"]
        assert len(revisions) == task["iteration"] - 1


def test_the_answer_names_and_quotes_each_specialists_part(
    finished: list[dict[str, Any]],
) -> None:
    for task in finished:
        answer = task["result"]["answer"]
        assert answer.startswith("[offline model, not an AI]")
        for contribution in task["result"]["contributions"]:
            quoted = re.search(rf'^- {contribution["agent"]}\b.*: "(.+)"$', answer, re.MULTILINE)
            assert quoted, (contribution["agent"], answer)
            assert quoted.group(1) in contribution["output"]


def test_the_critics_feedback_is_about_each_task_and_differs_between_tasks(
    finished: list[dict[str, Any]],
) -> None:
    feedback = [t["result"]["feedback"] for t in finished]

    assert len(set(feedback)) == len(TASKS), feedback
    for task, said in zip(finished, feedback, strict=True):
        assert said.startswith("[offline model, not an AI]")
        assert f'"{task["description"]}"' in said
        assert any(f"The {agent} part" in said for agent in SPECIALISTS), said


def test_each_draft_says_it_drew_on_as_many_items_as_its_step_records_as_read(
    finished: list[dict[str, Any]],
) -> None:
    steps = [s["step"] for t in finished for s in t["subtasks"] if s["step"]]

    assert steps
    assert any(s["memory_read"] for s in steps), "no step read any shared memory"
    for step in steps:
        said = DREW_ON.search(step["output"])
        assert said, step["output"]
        assert int(said.group(1)) == len(step["memory_read"]), step


def test_latencies_are_rounded_and_waves_count_from_one(finished: list[dict[str, Any]]) -> None:
    for task in finished:
        for subtask in task["subtasks"]:
            assert subtask["wave"] == 1  # the offline plan runs every specialist at once
            latency = subtask["step"]["latency_ms"]
            assert latency == round(latency, 1)
        for entry in task["history"]:
            if entry["kind"] == "step":
                assert entry["detail"]["latency_ms"] == round(entry["detail"]["latency_ms"], 1)


def steps_of(task: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [h for h in task["history"] if h["kind"] == "step" and h["detail"]["subtask"] == key]


def test_the_critics_review_records_the_worker_that_ran_it(
    finished: list[dict[str, Any]],
) -> None:
    for task in finished:
        assert [h["detail"]["worker"] for h in steps_of(task, "@review")] == [CRITIC] * task[
            "iteration"
        ]


def test_the_plan_and_synthesis_record_the_coordinator_worker_that_ran_them(
    finished: list[dict[str, Any]],
) -> None:
    for task in finished:
        for key in ("@plan", "@synthesis"):
            assert [h["detail"]["worker"] for h in steps_of(task, key)] == [COORDINATOR] * task[
                "iteration"
            ]


def test_subtask_steps_record_the_agents_worker(finished: list[dict[str, Any]]) -> None:
    workers = {s["step"]["worker"] for t in finished for s in t["subtasks"]}

    assert workers == {AGENTS}
