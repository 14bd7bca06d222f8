"""The README's walk-through over HTTP, against `mesh serve` on real Redis and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import redis
import sqlalchemy as sa

from meshcore.domain.network import DEFAULT_TEAM
from tests.e2e.server import AUTH, DEV_KEY, mesh_serve, poll, workers_ready

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Iterator[tuple[str, str]]:
    url = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(url).flushdb()
    with mesh_serve(
        tmp_path_factory.mktemp("serve"), database_url=database_url, redis_url=url
    ) as base:
        yield base, url


@pytest.fixture(scope="module")
def client(server: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=10, headers=AUTH) as c:
        yield c


def test_a_submitted_task_completes_with_a_reviewed_result(client: httpx.Client) -> None:
    network = client.post("/api/mesh/networks", json={"name": "launch team"})
    assert network.status_code == 201
    network_id = network.json()["id"]
    assert {a["type"] for a in network.json()["agents"]} == set(DEFAULT_TEAM)

    submitted = client.post(
        f"/api/mesh/networks/{network_id}/tasks",
        json={
            "description": "Write the launch email for Mesh",
            "context": {"segment": "developers"},
            "priority": "high",
        },
    )
    assert submitted.status_code == 202
    location = submitted.headers["Location"]
    assert location == f"/api/mesh/networks/{network_id}/tasks/{submitted.json()['id']}"

    task = poll(client, location)

    assert task["status"] == "completed"
    assert task["result"]["answer"].startswith("[offline model, not an AI]")
    assert 0 <= task["result"]["score"] <= 1
    # Every iteration's five specialist subtasks, each completed.
    assert [s["status"] for s in task["subtasks"]] == ["completed"] * 5 * task["iteration"]
    assert sorted({s["iteration"] for s in task["subtasks"]}) == list(
        range(1, task["iteration"] + 1)
    )
    statuses = [h["status"] for h in task["history"] if h["kind"] == "transition"]
    assert statuses[:5] == ["queued", "planning", "running", "synthesizing", "reviewing"]
    assert statuses[-1] == "completed"
    assert task["usage"]["input_tokens"] > 0


def test_a_held_task_waits_for_process(client: httpx.Client) -> None:
    network_id = client.post("/api/mesh/networks", json={"name": "held"}).json()["id"]
    held = client.post(
        f"/api/mesh/networks/{network_id}/tasks",
        json={"description": "Later", "auto_process": False},
    )
    location = held.headers["Location"]
    assert client.get(location).json()["status"] == "queued"

    started = client.post(location + "/process")

    assert started.status_code == 202
    assert poll(client, location)["status"] == "completed"
    again = client.post(location + "/process")
    assert again.status_code == 409
    assert again.json()["code"] == 409


def test_deleting_a_network_removes_its_rows_and_keys(
    client: httpx.Client, server: tuple[str, str], database_url: str
) -> None:
    network_id = client.post("/api/mesh/networks", json={"name": "doomed"}).json()["id"]
    workers_ready(client, network_id)
    client.post(
        f"/api/mesh/networks/{network_id}/memory",
        json={"type": "fact", "content": "Mesh ships on Monday", "confidence": 0.9},
    )
    store = redis.Redis.from_url(server[1])
    assert store.keys(f"mesh:*:{network_id}:*")
    engine = sa.create_engine(database_url)

    assert client.delete(f"/api/mesh/networks/{network_id}").status_code == 204

    assert client.get(f"/api/mesh/networks/{network_id}").status_code == 404
    assert store.keys(f"*{network_id}*") == []
    with engine.connect() as db:
        for table in ("networks", "agents", "tasks", "memory_items"):
            column = "id" if table == "networks" else "network_id"
            count = db.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :id"),
                {"id": UUID(network_id)},
            ).scalar_one()
            assert count == 0, table
        for table in ("subtasks", "steps", "task_events"):
            orphans = db.execute(
                sa.text(
                    f"SELECT count(*) FROM {table} t LEFT JOIN tasks ON tasks.id = t.task_id "
                    "WHERE tasks.id IS NULL"
                )
            ).scalar_one()
            assert orphans == 0, table
    engine.dispose()


def test_errors_over_http_are_json(client: httpx.Client, server: tuple[str, str]) -> None:
    anonymous = httpx.get(f"{server[0]}/api/mesh/networks", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["code"] == 401
    unknown = client.get("/api/mesh/nothing-here")
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"] == "application/json"
    bad = client.post(
        "/api/mesh/networks", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert "the body is not valid JSON" in bad.json()["errors"]["json"][0]


def test_mesh_submit_waits_and_prints_the_result(server: tuple[str, str]) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshcli.main",
            "submit",
            "Write a subject line",
            "--wait",
            "--url",
            server[0],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "MESH_API_KEY": DEV_KEY},
    )

    assert done.returncode == 0, done.stderr
    assert "status completed" in done.stdout
    assert "[offline model, not an AI] Synthesis" in done.stdout
