"""Two tenants side by side on one fleet: `mesh serve` on real Postgres and Redis, real workers.

Each tenant holds a key of its own, a network, a canary memory item and a task run to the end.
Each must see only its own networks, tasks and memory, find the other's ids as ids that do not
exist, and its task's agents must read its own canary and never the other's.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from meshcli.keys import key_service
from meshcore.domain.keys import Scope
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS, TEST_DATABASE_URL
from tests.e2e.server import mesh_serve, poll

pytestmark = pytest.mark.e2e

# A Redis database of this module's own: the fleet consumes every queue on it.
REDIS_URL = "redis://127.0.0.1:6379/12"


@dataclass
class Tenant:
    name: str
    client: httpx.Client
    network_id: str = ""
    canary: str = ""
    canary_id: str = ""
    task: dict | None = None


@pytest.fixture(scope="module")
def servers(database_url: str) -> Iterator[dict[str, str]]:
    flush = redis.Redis.from_url(REDIS_URL)
    flush.flushdb()
    yield {
        "MESH_DATABASE_URL": TEST_DATABASE_URL,
        "MESH_REDIS_URL": REDIS_URL,
        "MESH_DATA_KEYS": DATA_KEYS,
    }
    flush.flushdb()
    flush.close()


@pytest.fixture(scope="module")
def tenants(servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[Tenant, Tenant]
]:
    settings = Settings(
        database_url=servers["MESH_DATABASE_URL"],
        redis_url=servers["MESH_REDIS_URL"],
        api_key_secret=API_KEY_SECRET,
    )
    names = [f"side-{secrets.token_hex(4)}-{side}" for side in ("a", "b")]
    with key_service(settings) as service:
        keys = [service.create(tenant_id=name, scopes=Scope)[1] for name in names]
    data_dir = tmp_path_factory.mktemp("two-tenants")
    with mesh_serve(data_dir, env={**servers, "MESH_AGENT_WORKERS": "1"}) as base:
        clients = [
            httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"})
            for key in keys
        ]
        pair = tuple(Tenant(name, client) for name, client in zip(names, clients, strict=True))
        for tenant in pair:
            _set_up(tenant)
        for tenant in pair:
            assert tenant.task is not None
            tenant.task = poll(tenant.client, tenant.task["location"], timeout=120)
        yield pair  # type: ignore[misc]
        for client in clients:
            client.close()


def _set_up(tenant: Tenant) -> None:
    created = tenant.client.post("/api/mesh/networks", json={"name": f"{tenant.name} team"})
    assert created.status_code == 201, created.text
    tenant.network_id = created.json()["id"]
    tenant.canary = f"canary-{tenant.name}-{secrets.token_hex(6)}"
    item = tenant.client.post(
        f"/api/mesh/networks/{tenant.network_id}/memory",
        json={"type": "fact", "content": f"The launch code is {tenant.canary}", "confidence": 1},
    )
    assert item.status_code == 201, item.text
    tenant.canary_id = item.json()["id"]
    submitted = tenant.client.post(
        f"/api/mesh/networks/{tenant.network_id}/tasks",
        json={"description": "Write the launch announcement"},
    )
    assert submitted.status_code == 202, submitted.text
    tenant.task = {"location": submitted.headers["Location"], **submitted.json()}


def test_each_tenants_task_completes(tenants: tuple[Tenant, Tenant]) -> None:
    for tenant in tenants:
        assert tenant.task is not None
        assert tenant.task["status"] == "completed", tenant.task.get("error")


def test_each_tenant_lists_only_its_own_networks_and_tasks(
    tenants: tuple[Tenant, Tenant],
) -> None:
    for tenant in tenants:
        networks = tenant.client.get("/api/mesh/networks?page_size=100").json()
        assert [n["id"] for n in networks] == [tenant.network_id]
        tasks = tenant.client.get(f"/api/mesh/networks/{tenant.network_id}/tasks").json()
        assert tenant.task is not None
        assert [t["id"] for t in tasks] == [tenant.task["id"]]


def test_the_other_tenants_ids_answer_404(tenants: tuple[Tenant, Tenant]) -> None:
    one, other = tenants
    for reader, owner in ((one, other), (other, one)):
        assert owner.task is not None
        network = f"/api/mesh/networks/{owner.network_id}"
        for path in (
            network,
            f"{network}/agents",
            f"{network}/tasks",
            f"{network}/tasks/{owner.task['id']}",
            f"{network}/memory",
        ):
            answer = reader.client.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert owner.canary not in answer.text
            assert owner.network_id not in json.dumps(answer.json().get("errors", {}))


def test_a_task_reads_its_own_tenants_memory_and_never_the_others(
    tenants: tuple[Tenant, Tenant],
) -> None:
    one, other = tenants
    for reader, owner in ((one, other), (other, one)):
        assert reader.task is not None
        steps = [s["step"] for s in reader.task["subtasks"] if s["step"]]
        read = {item for step in steps for item in step["memory_read"]}
        assert reader.canary_id in read
        assert owner.canary_id not in read
        whole = json.dumps(reader.task)
        assert owner.canary not in whole
        memory = reader.client.get(
            f"/api/mesh/networks/{reader.network_id}/memory?page_size=100"
        ).json()
        assert owner.canary not in json.dumps(memory)
        assert reader.canary in json.dumps(memory)
