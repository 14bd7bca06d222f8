"""Erasure: a deleted network and an erased tenant leave nothing behind, in Postgres or Redis.

Two tenants work through the HTTP API with real workers; one is erased (or loses a network)
while work of it is queued and running; then every table of the live database and every key
of the tenant's Redis prefix are scanned for the tenant and for its canaries. Only the audit
trail, which holds no content, may still name the tenant.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshapi.routes.tenant import CONFIRM_HEADER
from meshcore.adapters.sql.tables import audit_events, metadata
from meshcore.domain.task import Priority
from meshcore.ports import TaskRef
from meshcore.settings import Settings
from meshworkers.app import QUEUES
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.integration.api.client import API, NETWORKS, ApiClient, bearer, new_key
from tests.integration.api.conftest import SESSION_TENANTS
from tests.integration.api.record import Record, purge_queued
from tests.integration.fleet import Fleet, WorkerSpec, fleet

pytestmark = pytest.mark.integration

# A Redis database of its own: the workers' fleet empties it at start.
REDIS_DB = "/7"
TENANT = f"{API}/tenant"
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}


@pytest.fixture(scope="module")
def erasure_redis_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + REDIS_DB


@pytest.fixture(scope="module")
def settings(database_url: str, erasure_redis_url: str, tenant: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=erasure_redis_url,
        tenant=tenant,
        api_key_secret=API_KEY_SECRET,
        data_keys=DATA_KEYS,
    )


@pytest.fixture(scope="module")
def redis_client(erasure_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(erasure_redis_url)
    yield client
    purge_queued(client, SESSION_TENANTS)
    client.close()


@pytest.fixture(scope="module")
def workers(database_url: str, erasure_redis_url: str) -> Iterator[Fleet]:
    # Each step takes a moment, so that a delete can land while one runs.
    spec = WorkerSpec("erasure@mesh-test", QUEUES, concurrency=8)
    with fleet(database_url, erasure_redis_url, [spec], offline_latency_ms=150) as running:
        yield running


@pytest.fixture
def tenant_b(engine: sa.Engine, redis_client: redis.Redis) -> Iterator[str]:
    tenant = f"{SESSION_TENANTS}b-{uuid4().hex[:8]}"
    yield tenant
    Record(engine, redis_client, tenant).purge()


def as_tenant(app: Flask, client: ApiClient, tenant: str) -> ApiClient:
    other = app.test_client()
    assert isinstance(other, ApiClient)
    other.error_schema = client.error_schema
    return other.use_key(new_key(app, tenant))


def work(client: ApiClient, canary: str, *, timeout_seconds: int = 60) -> dict[str, str]:
    """A network with a memory item and a completed task, each carrying `canary`."""
    network = client.post(
        NETWORKS,
        json={
            "name": f"net {canary}",
            "description": canary,
            "config": {"quality_threshold": 0.0, "timeout_seconds": timeout_seconds},
        },
    ).get_json()
    memory = f"{NETWORKS}/{network['id']}/memory"
    item = client.post(memory, json={"type": "fact", "content": f"fact {canary}"})
    assert item.status_code == 201
    task = submit(client, network["id"], canary)
    assert wait(client, network["id"], task["id"])["status"] == "completed"
    return {"network_id": network["id"], "task_id": task["id"]}


def submit(client: ApiClient, network_id: str, canary: str) -> dict[str, Any]:
    response = client.post(
        f"{NETWORKS}/{network_id}/tasks",
        json={"description": f"Write about {canary}", "context": {"brief": canary}},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def wait(client: ApiClient, network_id: str, task_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"{NETWORKS}/{network_id}/tasks/{task_id}").get_json()
        if task["status"] in TERMINAL:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} still {task['status']}")


def wait_for_status(client: ApiClient, network_id: str, task_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while client.get(f"{NETWORKS}/{network_id}/tasks/{task_id}").get_json()["status"] != status:
        assert time.monotonic() < deadline, f"task {task_id} never reached {status}"
        time.sleep(0.02)


def every_table(engine: sa.Engine) -> list[str]:
    """The schema's tables and the live database's, so that a new table cannot be missed."""
    live = sa.inspect(engine).get_table_names()
    declared = [t.name for t in metadata.sorted_tables]
    assert set(declared) <= set(live)
    return sorted(set(live) | set(declared))


def leftovers_in_postgres(engine: sa.Engine, *needles: str) -> list[str]:
    """Each table (but the audit trail) and row that holds one of `needles`, as text."""
    found = []
    with engine.connect() as db:
        for table in every_table(engine):
            for row in db.execute(sa.text(f'SELECT * FROM "{table}"')):
                text = json.dumps([str(v) for v in row])
                hits = [n for n in needles if n in text]
                if hits and table != audit_events.name:
                    found.append(f"{table}: {hits} in {text[:300]}")
    return found


def audit_rows_hold(engine: sa.Engine, *needles: str) -> bool:
    with engine.connect() as db:
        rows = db.execute(audit_events.select()).all()
    return any(n in json.dumps([str(v) for v in row]) for row in rows for n in needles)


def leftovers_in_redis(client: redis.Redis, tenant: str, *canaries: str) -> list[str]:
    """The tenant's keys, and any key whose value holds a canary."""
    found = [k.decode() for k in client.scan_iter(match=f"mesh:{tenant}:*")]
    for key in client.scan_iter(count=1000):
        value = client.dump(key) or b""
        if any(c.encode() in value for c in canaries):
            found.append(f"{key.decode()} holds a canary")
    return found


def test_erasing_a_tenant_leaves_nothing_of_it_and_the_other_tenant_works_on(
    app: Flask,
    client: ApiClient,
    workers: Fleet,
    engine: sa.Engine,
    redis_client: redis.Redis,
    tenant: str,
    tenant_b: str,
    api_key: str,
) -> None:
    canary_a, canary_b = f"canary-a-{uuid4().hex}", f"canary-b-{uuid4().hex}"
    b = as_tenant(app, client, tenant_b)
    mine, theirs = work(client, canary_a), work(b, canary_b)
    # Work of A still going when it is erased: its messages must find nothing to do.
    running = submit(client, mine["network_id"], canary_a)
    queued = client.post(
        f"{NETWORKS}/{mine['network_id']}/tasks",
        json={"description": f"held {canary_a}", "auto_process": False},
    ).get_json()
    before = Record(engine, redis_client, tenant).snapshot()

    unconfirmed = client.delete(TENANT)
    mistyped = client.delete(TENANT, headers={CONFIRM_HEADER: f"erase {tenant_b}"})

    for refused in (unconfirmed, mistyped):
        assert refused.status_code == 428
        assert CONFIRM_HEADER in refused.get_json()["message"]
        assert f"erase {tenant}" in refused.get_json()["message"]
    assert Record(engine, redis_client, tenant).snapshot()["networks"] == before["networks"]

    erased = client.delete(TENANT, headers={CONFIRM_HEADER: f"erase {tenant}"})

    assert erased.status_code == 202, erased.get_data(as_text=True)
    body = erased.get_json()
    assert body["tenant"] == tenant
    assert body["rows"]["networks"] == 1 and body["rows"]["tasks"] == 3
    assert body["rows"]["api_keys"] >= 1 and body["rows"]["memory_items"] >= 2
    assert body["redis_keys"] > 0
    assert "audit_events" not in body["rows"]
    # The calling key went with the rest.
    assert client.get(NETWORKS).status_code == 401
    assert client.get(NETWORKS, headers=bearer(api_key)).status_code == 401
    # What was queued or running is delivered meanwhile and must record nothing.
    time.sleep(5)

    needles = (tenant, canary_a, mine["network_id"], running["id"], queued["id"])
    assert leftovers_in_postgres(engine, *needles) == []
    assert leftovers_in_redis(redis_client, tenant, canary_a) == []
    assert not audit_rows_hold(engine, canary_a)
    with engine.connect() as db:
        kept = db.execute(
            sa.select(audit_events.c.method, audit_events.c.route, audit_events.c.status)
            .where(audit_events.c.tenant_id == tenant)
            .order_by(audit_events.c.id.desc())
        ).all()
    assert kept[0] == ("DELETE", TENANT, 202)  # the erasure is in the trail it keeps
    assert ("DELETE", TENANT, 428) in kept

    # B is intact, canaries and all, and its work goes on.
    network_b = b.get(f"{NETWORKS}/{theirs['network_id']}").get_json()
    assert network_b["description"] == canary_b
    memory_b = b.get(f"{NETWORKS}/{theirs['network_id']}/memory").get_json()
    assert f"fact {canary_b}" in [m["content"] for m in memory_b]
    task_b = b.get(f"{NETWORKS}/{theirs['network_id']}/tasks/{theirs['task_id']}").get_json()
    assert canary_b in task_b["description"]
    again = submit(b, theirs["network_id"], canary_b)
    assert wait(b, theirs["network_id"], again["id"])["status"] == "completed"


def test_a_network_deleted_while_its_task_runs_leaves_no_row_and_no_redis_key(
    client: ApiClient, workers: Fleet, engine: sa.Engine, redis_client: redis.Redis, tenant: str
) -> None:
    canary = f"canary-{uuid4().hex}"
    kept = work(client, f"kept-{uuid4().hex}")
    network = client.post(
        NETWORKS,
        json={"name": "doomed", "config": {"quality_threshold": 1.0, "timeout_seconds": 8}},
    ).get_json()
    agents = [a["id"] for a in network["agents"]]
    running = submit(client, network["id"], canary)
    wait_for_status(client, network["id"], running["id"], "running")
    memory = f"{NETWORKS}/{network['id']}/memory"
    assert client.post(memory, json={"type": "fact", "content": canary}).status_code == 201

    assert client.delete(f"{NETWORKS}/{network['id']}").status_code == 204
    # Every kind of message the task could still have queued, delivered after the delete.
    ref = TaskRef(tenant, UUID(running["id"]), Priority.NORMAL)
    dispatcher = workers.mesh.dispatcher
    dispatcher.coordinate(ref)
    dispatcher.collect(ref, 1, 0)
    dispatcher.review(ref, 1)
    dispatcher.expire(ref, datetime.now(UTC))

    # Past the task's deadline: its steps, fan-ins, reviews and expiry have all been delivered.
    time.sleep(10)
    needles = (network["id"], running["id"], canary, *agents)
    assert leftovers_in_postgres(engine, *needles) == []
    leftover = [
        k.decode()
        for k in redis_client.scan_iter(match=f"mesh:{tenant}:*")
        if any(n in k.decode() for n in (network["id"], *agents))
    ]
    assert leftover == []
    assert leftovers_in_redis(redis_client, "-no-such-tenant-", canary) == []
    # The tenant's other network is untouched.
    assert client.get(f"{NETWORKS}/{kept['network_id']}").status_code == 200


def test_another_tenants_key_cannot_delete_a_network(
    app: Flask,
    client: ApiClient,
    tenant_b: str,
    engine: sa.Engine,
    redis_client: redis.Redis,
    tenant: str,
) -> None:
    network = client.post(NETWORKS, json={"name": "mine"}).get_json()
    b = as_tenant(app, client, tenant_b)
    before = Record(engine, redis_client, tenant).snapshot()

    response = b.delete(f"{NETWORKS}/{network['id']}")

    assert response.status_code == 404
    assert Record(engine, redis_client, tenant).snapshot() == before
    assert client.get(f"{NETWORKS}/{network['id']}").status_code == 200
