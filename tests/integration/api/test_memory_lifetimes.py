"""Memory's lifetimes and size on the real Postgres and Redis: context that ends with its
task, types that expire, promotion, and a network held to its bound.

The sweep is the one the sweeper runs (Mesh.memory_sweep), called with a time the test
chooses; the agents' view is MemoryView over the app's Redis, as a step reads it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from meshcore.bootstrap import Mesh
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.services.memory_view import MemoryView
from meshcore.settings import Settings
from meshcore.telemetry import exposition
from tests.integration.api.client import NETWORKS, ApiClient, assert_error, bearer, new_key
from tests.integration.api.private_api import settings_on
from tests.integration.api.race import race
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

QUOTA = 4  # the client quota of this module's networks (MESH_MAX_MEMORY_ITEMS_PER_NETWORK)
BOUND = 1000  # the deployment's bound (MESH_MEMORY_BOUND)


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, tenant: str) -> Settings:
    return settings_on(
        database_url, redis_url, tenant,
        max_memory_items_per_network=QUOTA,
        memory_bound=BOUND,
    )  # fmt: skip


@pytest.fixture
def mesh(app: Flask) -> Mesh:
    return app.extensions["mesh"]


@pytest.fixture
def view(mesh: Mesh, tenant: str) -> MemoryView:
    """What agents read: the shared view in Redis, rebuilt from the record if it is missing."""
    return MemoryView(tenant_id=tenant, uow=mesh.uow, store=mesh.adapters.memory)


def create_network(client: ApiClient, memory: dict[str, Any] | None = None) -> dict[str, Any]:
    config = {"memory": memory} if memory is not None else {}
    response = client.post(NETWORKS, json={"name": f"net-{uuid4().hex[:8]}", "config": config})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def add(
    client: ApiClient, network: dict[str, Any], content: str, kind: str = "fact", **extra: Any
) -> dict[str, Any]:
    response = client.post(
        f"{NETWORKS}/{network['id']}/memory", json={"type": kind, "content": content, **extra}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def listed(client: ApiClient, network: dict[str, Any]) -> set[str]:
    response = client.get(f"{NETWORKS}/{network['id']}/memory?page_size=100")
    assert response.status_code == 200
    return {i["content"] for i in response.get_json()}


def in_view(view: MemoryView, network: dict[str, Any]) -> set[str]:
    found = view.query(UUID(network["id"]), MemoryQuery(limit=100))
    return {i.content for i in found}


def promote(client: ApiClient, network: dict[str, Any], item: dict[str, Any]) -> Any:
    return client.post(f"{NETWORKS}/{network['id']}/memory/{item['id']}/promote")


def evictions(reason: str) -> float:
    """mesh_memory_evictions_total{reason} as a scrape of this process reads it: what a
    worker's /metrics serves (exposition.serve renders the same registry)."""
    text = exposition.render()[0].decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mesh_memory_evictions_total" and sample.labels == {"reason": reason}:
                return sample.value
    return 0.0


def at(item: dict[str, Any], seconds: float) -> datetime:
    return datetime.fromisoformat(item["created_at"]) + timedelta(seconds=seconds)


def test_a_context_item_is_read_while_its_task_runs_and_goes_when_it_ends(
    client: ApiClient, mesh: Mesh, view: MemoryView, record: Record
) -> None:
    network = create_network(client)
    task = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Draft the launch email", "auto_process": False},
    ).get_json()
    of_task = {"task_id": task["id"]}
    context = add(client, network, "Segment Y opens mail on Tuesdays", "context", metadata=of_task)
    kept = add(client, network, "Segment Y prefers short subjects", "context", metadata=of_task)
    fact = add(client, network, "Orbit ships in May", "fact", metadata=of_task)
    sweep = mesh.memory_sweep()
    assert sweep is not None
    # The sweep is across tenants: first it takes what ended tasks of earlier tests left in
    # the shared record, so that what it counts next is this test's alone.
    while sweep.sweep(datetime.now().astimezone()):
        pass
    before = evictions("task_ended")

    running = sweep.sweep(datetime.now().astimezone())
    read = view.query(
        UUID(network["id"]), MemoryQuery(types=(MemoryType.CONTEXT,), task_id=UUID(task["id"]))
    )
    assert "memory_task_ended" not in running
    assert {i.content for i in read} == {context["content"], kept["content"]}

    promoted = promote(client, network, kept)
    record.set_task_status(task["id"], "completed")
    swept = mesh.sweeper().sweep()  # as the workers' periodic sweep does

    assert promoted.status_code == 200, promoted.get_data(as_text=True)
    assert swept["memory_task_ended"] >= 1
    assert record.count("memory_items", id=context["id"]) == 0
    stays = {kept["content"], fact["content"]}
    assert listed(client, network) == stays
    assert in_view(view, network) == stays
    assert not any(context["id"].encode() in key for key in record.memory_keys(network["id"]))
    assert evictions("task_ended") == before + swept["memory_task_ended"]


def test_an_item_of_a_type_with_a_time_to_live_expires_after_it(
    client: ApiClient, mesh: Mesh, view: MemoryView, record: Record
) -> None:
    network = create_network(client, {"ttl_seconds": {"fact": 60}})
    fact = add(client, network, "The spring sale ends on Friday")
    promoted = add(client, network, "Orbit costs $4.99 a month")
    decision = add(client, network, "Send the email on Tuesday", "decision")
    sweep = mesh.memory_sweep()
    assert sweep is not None
    promote(client, network, promoted)
    before = evictions("expired")

    early = sweep.sweep(at(fact, 59))
    listed_early = listed(client, network)
    late = sweep.sweep(at(fact, 61))

    assert datetime.fromisoformat(fact["expires_at"]) == at(fact, 60)
    assert decision["expires_at"] is None
    assert "memory_expired" not in early
    assert fact["content"] in listed_early
    assert late["memory_expired"] >= 1
    assert record.count("memory_items", id=fact["id"]) == 0
    assert listed(client, network) == {promoted["content"], decision["content"]}
    assert in_view(view, network) == {promoted["content"], decision["content"]}
    assert evictions("expired") == before + late["memory_expired"]


def test_a_network_at_its_bound_evicts_the_least_valuable_item_and_keeps_the_rest(
    client: ApiClient, view: MemoryView, record: Record
) -> None:
    network = create_network(client, {"max_items": 3})
    trusted = add(client, network, "Orbit ships in May", confidence=0.9)
    doubtful = add(client, network, "Orbit may ship in June", confidence=0.3)
    also = add(client, network, "Orbit costs $4.99", confidence=0.9)
    before = evictions("bound")

    newest = add(client, network, "Orbit comes in blue", confidence=0.8)

    kept = {trusted["content"], also["content"], newest["content"]}
    assert record.count("memory_items", network_id=network["id"]) == 3
    assert record.count("memory_items", id=doubtful["id"]) == 0
    assert listed(client, network) == kept
    assert in_view(view, network) == kept
    assert evictions("bound") == before + 1


def test_of_items_alike_the_oldest_goes_and_never_the_one_being_written(
    client: ApiClient, record: Record
) -> None:
    network = create_network(client, {"max_items": 3})
    oldest = add(client, network, "Orbit ships in May", confidence=0.5)
    add(client, network, "Orbit costs $4.99", confidence=0.5)
    add(client, network, "Orbit comes in blue", confidence=0.5)

    add(client, network, "Orbit has a dark mode", confidence=0.5)
    weakest = add(client, network, "Orbit may ship late", confidence=0.01)

    assert record.count("memory_items", id=oldest["id"]) == 0
    assert record.count("memory_items", id=weakest["id"]) == 1
    assert record.count("memory_items", network_id=network["id"]) == 3


def test_an_agents_write_is_bounded_as_a_clients_is(
    client: ApiClient, mesh: Mesh, tenant: str, record: Record
) -> None:
    network = create_network(client, {"max_items": 2})
    doubtful = add(client, network, "Orbit may ship in June", confidence=0.2)
    add(client, network, "Orbit ships in May", confidence=0.9)
    agents = MemoryView(tenant_id=tenant, uow=mesh.uow, store=mesh.adapters.memory, bound=BOUND)
    finding = MemoryItem.create(
        tenant_id=tenant,
        network_id=UUID(network["id"]),
        type=MemoryType.FACT,
        content="Orbit's buyers are mostly teams",
        confidence=0.7,
        now=datetime.now().astimezone(),
        metadata={"source_agent": "research"},
    )

    with mesh.uow(tenant) as uow:
        agents.remember(uow, finding)

    assert record.count("memory_items", network_id=network["id"]) == 2
    assert record.count("memory_items", id=doubtful["id"]) == 0
    assert record.count("memory_items", id=str(finding.id)) == 1


def test_at_a_bound_within_the_client_quota_a_client_is_never_refused(
    client: ApiClient, record: Record
) -> None:
    bounded = create_network(client, {"max_items": QUOTA})
    for i in range(QUOTA + 2):
        add(client, bounded, f"Orbit fact number {i}")
    unbounded = create_network(client)  # the deployment's bound, above the quota
    for i in range(QUOTA):
        add(client, unbounded, f"Orbit fact number {i}")

    refused = client.post(
        f"{NETWORKS}/{unbounded['id']}/memory", json={"type": "fact", "content": "one too many"}
    )

    assert record.count("memory_items", network_id=bounded["id"]) == QUOTA
    assert_error(refused, 422, field=None, problem=f"quota memory_items_per_network is {QUOTA}")


@pytest.mark.parametrize(
    ("memory", "field", "problem"),
    [
        ({"ttl_seconds": {"fact": 59}}, "config.memory.ttl_seconds.fact", "60"),
        ({"ttl_seconds": {"context": 365 * 86_400 + 1}}, "config.memory.ttl_seconds.context", ""),
        ({"ttl_seconds": {"opinion": 600}}, "config.memory.ttl_seconds.opinion", "unknown"),
        ({"ttl_seconds": {"fact": "an hour"}}, "config.memory.ttl_seconds.fact", "integer"),
        ({"max_items": 0}, "config.memory.max_items", ""),
        ({"max_items": BOUND + 1}, "config.memory.max_items", f"at most {BOUND}"),
    ],
)
def test_a_memory_config_out_of_range_is_refused_naming_the_field_and_storing_nothing(
    client: ApiClient, record: Record, memory: dict[str, Any], field: str, problem: str
) -> None:
    before = record.snapshot()

    response = client.post(NETWORKS, json={"name": "bad", "config": {"memory": memory}})

    assert_error(response, 422, field=field, problem=problem)
    assert record.snapshot() == before


def test_a_network_shows_its_memory_config_and_one_recorded_without_it_reads(
    client: ApiClient, engine: sa.Engine
) -> None:
    network = create_network(client, {"ttl_seconds": {"context": 3600}, "max_items": 500})
    old = create_network(client)
    with engine.begin() as db:
        db.execute(
            sa.text("UPDATE networks SET config = config - 'memory' WHERE id = :id"),
            {"id": old["id"]},
        )

    shown = client.get(f"{NETWORKS}/{network['id']}").get_json()["config"]["memory"]
    read = client.get(f"{NETWORKS}/{old['id']}")

    assert shown == {"ttl_seconds": {"context": 3600}, "max_items": 500}
    assert read.status_code == 200
    assert read.get_json()["config"]["memory"] == {"ttl_seconds": {}, "max_items": None}


def test_promoting_makes_an_item_last_once_and_another_tenants_key_finds_nothing(
    client: ApiClient, app: Flask, other_tenant: str
) -> None:
    network = create_network(client, {"ttl_seconds": {"fact": 600}})
    item = add(client, network, "Orbit ships in May")

    first = promote(client, network, item)
    again = promote(client, network, item)
    foreign = client.post(
        f"{NETWORKS}/{network['id']}/memory/{item['id']}/promote",
        headers=bearer(new_key(app, other_tenant)),
    )
    missing = client.post(f"{NETWORKS}/{network['id']}/memory/{uuid4()}/promote")

    assert first.status_code == 200, first.get_data(as_text=True)
    body = first.get_json()
    assert body["id"] == item["id"]
    assert body["expires_at"] is None and body["promoted_at"] is not None
    assert again.get_json()["promoted_at"] == body["promoted_at"]
    listed_item = client.get(f"{NETWORKS}/{network['id']}/memory").get_json()[0]
    assert listed_item["promoted_at"] == body["promoted_at"]
    assert_error(foreign, 404, field=None, problem="not found")
    assert_error(missing, 404, field=None, problem="not found")


def test_writers_at_once_past_the_bound_leave_it_full_and_counted_right(
    client: ApiClient, mesh: Mesh, tenant: str, engine: sa.Engine, record: Record
) -> None:
    network = create_network(client, {"max_items": 3})
    network_id = UUID(network["id"])
    for i in range(3):
        add(client, network, f"Orbit fact number {i}", confidence=0.2)
    agents = MemoryView(tenant_id=tenant, uow=mesh.uow, store=mesh.adapters.memory, bound=BOUND)
    clients = mesh.tenant(tenant).memory

    def agent_writes(i: int) -> object:
        item = MemoryItem.create(
            tenant_id=tenant, network_id=network_id, type=MemoryType.FACT,
            content=f"An agent's finding number {i}", confidence=0.9,
            now=datetime.now().astimezone(),
        )  # fmt: skip
        with mesh.uow(tenant) as uow:
            return agents.remember(uow, item)

    def client_writes(i: int) -> object:
        return clients.add(
            network_id, type=MemoryType.FACT, content=f"A client's note {i}", confidence=0.9
        )

    calls = [lambda i=i: agent_writes(i) for i in range(3)]
    calls += [lambda i=i: client_writes(i) for i in range(2)]
    race(engine, "SELECT 1 FROM memory_counts WHERE network_id = :n FOR UPDATE",
         {"n": network_id}, calls)  # fmt: skip

    with engine.connect() as db:
        counted = db.execute(
            sa.text("SELECT item_count FROM memory_counts WHERE network_id = :n"),
            {"n": network_id},
        ).scalar_one()
    assert record.count("memory_items", network_id=network["id"]) == 3
    assert counted == 3
    held = {i["content"] for i in client.get(f"{NETWORKS}/{network['id']}/memory").get_json()}
    assert not any(c.startswith("Orbit fact") for c in held)


def test_an_item_a_verdict_holds_is_passed_over_not_waited_for(
    client: ApiClient, engine: sa.Engine, record: Record
) -> None:
    network = create_network(client, {"max_items": 3})
    held = add(client, network, "Orbit may ship in June", confidence=0.2)
    weak = add(client, network, "Orbit may cost $5", confidence=0.4)
    add(client, network, "Orbit ships in May", confidence=0.9)

    with engine.connect() as verdict:
        # As MemoryRepository.change_confidence holds an item until its verdict commits.
        verdict.execute(
            sa.text("SELECT 1 FROM memory_items WHERE id = :id FOR NO KEY UPDATE"),
            {"id": held["id"]},
        )
        written = client.post(
            f"{NETWORKS}/{network['id']}/memory",
            json={"type": "fact", "content": "Orbit comes in blue", "confidence": 0.8},
        )
        verdict.rollback()

    assert written.status_code == 201
    assert record.count("memory_items", id=held["id"]) == 1
    assert record.count("memory_items", id=weak["id"]) == 0
    assert record.count("memory_items", network_id=network["id"]) == 3
