"""A network's memory learns across tasks, end to end with real workers on a broker of their
own: a second task's steps build on what the first task's critic passed, and not on the
drafts it rejected.

The offline critic scores a task's words the same every time, and 0.1 more each revision:
"Write the spring sale email" is rejected on its first drafts and passed on a revision, with
a threshold of 0.8 and four iterations to reach it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.api.client import NETWORKS, ApiClient
from tests.integration.api.private_api import BUILTIN_QUEUES
from tests.integration.fleet import WorkerSpec

pytestmark = pytest.mark.integration

WORKERS = [
    WorkerSpec("coordinator@learned", ["coordinator"], concurrency=2),
    WorkerSpec("builtin@learned", BUILTIN_QUEUES, concurrency=2),
]
ENDED = ("completed", "failed", "timed_out", "cancelled")
FLOOR = 0.5  # the agents' reading floor: MESH_MEMORY_MIN_CONFIDENCE's default
PLAN = [
    {"key": "facts", "agent": "research", "description": "Find the sale's facts"},
    {
        "key": "email",
        "agent": "content",
        "description": "Write the email from the facts",
        "depends_on": ["facts"],
    },
]


def finished(client: ApiClient, network_id: str, description: str) -> dict[str, Any]:
    response = client.post(
        f"{NETWORKS}/{network_id}/tasks", json={"description": description, "plan": PLAN}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    url = response.headers["Location"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = client.get(url).get_json()
        if task["status"] in ENDED:
            return task
        time.sleep(0.3)
    raise AssertionError(f"task still {task['status']}")


def verdicts(task: dict[str, Any]) -> dict[int, float]:
    """The critic's score of each iteration, from the task's history."""
    return {
        h["detail"]["iteration"]: h["detail"]["score"]
        for h in task["history"]
        if h["kind"] == "verdict"
    }


def read_by(engine: sa.Engine, task_id: str) -> set[str]:
    """Every memory item the task's steps read, as the steps recorded them."""
    with engine.connect() as db:
        rows = db.execute(
            sa.text("SELECT memory_read FROM steps WHERE task_id = :t"), {"t": task_id}
        ).scalars()
        return {str(i) for read in rows for i in read}


def test_a_second_task_builds_on_what_the_critic_passed_and_not_on_what_it_rejected(
    client: ApiClient, engine: sa.Engine
) -> None:
    made = client.post(
        NETWORKS,
        json={"name": "sales", "config": {"quality_threshold": 0.8, "max_iterations": 4}},
    ).get_json()

    first = finished(client, made["id"], "Write the spring sale email")

    scores = verdicts(first)
    assert first["status"] == "completed"
    rejected = {n for n, s in scores.items() if s < 0.8}
    passed = {n for n, s in scores.items() if s >= 0.8}
    assert rejected and passed, scores
    memory = client.get(f"{NETWORKS}/{made['id']}/memory", query_string={"page_size": 100})
    mine = [m for m in memory.get_json() if m["metadata"].get("task_id") == first["id"]]
    # Each draft of the email, judged by the critic's verdict on its iteration. (The research
    # steps found the same facts each time: those merged into one item, judged by each.)
    drafts = {
        n: {m["id"]: m for m in mine
            if m["metadata"].get("iteration") == n and m["metadata"]["source_agent"] == "content"}
        for n in scores
    }  # fmt: skip
    assert all(drafts[n] for n in scores), drafts
    for n in rejected:
        assert all(m["confidence"] < FLOOR for m in drafts[n].values()), drafts[n]
    for n in passed:
        assert all(m["confidence"] >= 0.8 for m in drafts[n].values()), drafts[n]

    second = finished(client, made["id"], "Write the follow-up to the spring sale")

    read = read_by(engine, second["id"])
    assert second["status"] == "completed"
    assert {i for n in passed for i in drafts[n]} <= read
    assert not {i for n in rejected for i in drafts[n]} & read
