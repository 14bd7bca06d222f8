"""A network's memory learns across tasks, end to end with real workers on a broker of their
own: a second task's steps build on what the first task's critic passed, and not on the
drafts it rejected.

The offline critic scores a task's words the same every time, and 0.1 more each revision:
"Write the spring sale email" is rejected on its first drafts and passed on a revision, with
a threshold of 0.8 and four iterations to reach it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshcore.domain.agent_types import own_queue
from meshcore.domain.network import SPECIALISTS, AgentType
from meshcore.settings import Settings
from tests.drills.harness import PrivateRedis
from tests.integration.api.client import NETWORKS, ApiClient
from tests.integration.api.private_api import keyed_client, private_redis_in, settings_on
from tests.integration.api.record import Record
from tests.integration.fleet import Fleet, WorkerSpec, fleet

pytestmark = pytest.mark.integration

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


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with private_redis_in(Path(tmp_path_factory.mktemp("learned-redis"))) as server:
        yield server


@pytest.fixture(scope="module")
def workers(database_url: str, private_redis: PrivateRedis) -> Iterator[Fleet]:
    builtin = [own_queue(t) for t in (*SPECIALISTS, AgentType.CRITIC)]
    specs = [
        WorkerSpec("coordinator@learned", ["coordinator"], concurrency=2),
        WorkerSpec("builtin@learned", builtin, concurrency=2),
    ]
    with fleet(database_url, private_redis.url, specs) as running:
        yield running


@pytest.fixture(scope="module")
def settings(database_url: str, private_redis: PrivateRedis, tenant: str) -> Settings:
    return settings_on(database_url, private_redis.url, tenant)


@pytest.fixture
def client(
    workers: Fleet, app: Flask, error_schema: dict[str, Any], engine: sa.Engine,
    private_redis: PrivateRedis, tenant: str,
) -> Iterator[ApiClient]:  # fmt: skip
    yield keyed_client(app, error_schema, tenant)
    broker = redis.Redis.from_url(private_redis.url)
    Record(engine, broker, tenant).purge()
    broker.close()


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
