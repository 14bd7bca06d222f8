"""Limits on real Postgres and Redis: the rate per key (429 with Retry-After and RateLimit-*),
the tenant's quotas at their edge (422, or 429 for tasks in flight), and sizes (413 for a
body, 422 naming the field for a string or a list), each refusal storing nothing."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from meshapi.app import create_app
from meshcore.settings import Settings
from tests.e2e.server import free_port
from tests.integration.api.client import API, NETWORKS, ApiClient, assert_error, bearer, new_key
from tests.integration.api.race import race
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

RATE = "3 per 2 seconds"
NETWORKS_QUOTA, AGENTS_QUOTA, MEMORY_QUOTA, TASKS_QUOTA = 3, 9, 3, 3
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    """The shared app's settings with small quotas (and the default, generous, rate)."""
    return settings.model_copy(
        update={
            "max_networks_per_tenant": NETWORKS_QUOTA,
            "max_agents_per_network": AGENTS_QUOTA,
            "max_memory_items_per_network": MEMORY_QUOTA,
            "max_tasks_in_flight": TASKS_QUOTA,
        }
    )


@pytest.fixture(scope="module")
def rate_app(settings: Settings) -> Iterator[Flask]:
    """An API whose keys may make RATE requests."""
    app = create_app(settings.model_copy(update={"rate_limit": RATE}))
    app.test_client_class = ApiClient
    yield app
    app.extensions["mesh"].close()


def client_of(app: Flask, error_schema: dict[str, Any], key: str | None) -> ApiClient:
    client = app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    return client.use_key(key)


@pytest.fixture
def rate_client(
    rate_app: Flask, error_schema: dict[str, Any], tenant: str, record: Record
) -> ApiClient:
    return client_of(rate_app, error_schema, new_key(rate_app, tenant))


def rate_headers(response: TestResponse) -> dict[str, str]:
    names = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")
    return {n: response.headers[n] for n in names if n in response.headers}


def exhaust(client: ApiClient) -> TestResponse:
    """Spend the key's RATE on GETs, each answered; answers the first refusal."""
    for remaining in (2, 1, 0):
        answered = client.get(NETWORKS)
        assert answered.status_code == 200, answered.get_data(as_text=True)
        assert answered.headers["RateLimit-Limit"] == "3"
        assert answered.headers["RateLimit-Remaining"] == str(remaining)
        assert 1 <= int(answered.headers["RateLimit-Reset"]) <= 2
    return client.get(NETWORKS)


def test_a_key_past_its_rate_gets_429_with_retry_after_and_ratelimit_headers(
    rate_client: ApiClient, record: Record
) -> None:
    refused = exhaust(rate_client)

    body = assert_error(refused, 429, field=None, problem="rate limit of 3 per 2 second")
    assert "retry after" in body["message"]
    headers = rate_headers(refused)
    assert headers["RateLimit-Limit"] == "3" and headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["Retry-After"]) <= 2
    assert headers["Retry-After"] == headers["RateLimit-Reset"]

    before = record.snapshot()
    write = rate_client.post(NETWORKS, json={"name": "refused by the rate"})
    assert write.status_code == 429
    assert record.snapshot() == before


def test_another_key_is_counted_apart(
    rate_app: Flask, rate_client: ApiClient, error_schema: dict[str, Any], tenant: str
) -> None:
    assert exhaust(rate_client).status_code == 429

    same_tenant = client_of(rate_app, error_schema, new_key(rate_app, tenant))
    answered = same_tenant.get(NETWORKS)

    assert answered.status_code == 200
    assert answered.headers["RateLimit-Remaining"] == "2"


def test_the_rate_frees_again_after_retry_after(rate_client: ApiClient) -> None:
    refused = exhaust(rate_client)
    assert refused.status_code == 429

    time.sleep(int(refused.headers["Retry-After"]) + 0.1)

    assert rate_client.get(NETWORKS).status_code == 200


def test_open_paths_and_refused_callers_are_never_counted(
    rate_app: Flask, rate_client: ApiClient, error_schema: dict[str, Any]
) -> None:
    anonymous = client_of(rate_app, error_schema, None)
    for path in ("/healthz", "/readyz", "/metrics", f"{API}/openapi.json"):
        for _ in range(5):
            answered = anonymous.get(path)
            assert answered.status_code == 200, path
            assert rate_headers(answered) == {}, path
    assert exhaust(rate_client).status_code == 429

    # Refused for the key before anything is counted: 401, never 429.
    no_key = anonymous.get(NETWORKS)
    wrong_key = anonymous.get(NETWORKS, headers=bearer(f"{rate_client.api_key}x"))
    assert (no_key.status_code, wrong_key.status_code) == (401, 401)


@pytest.fixture(scope="module")
def socket_redis() -> Iterator[str]:
    """A redis-server of its own on a Unix socket only, as the embedded default runs one."""
    workdir = Path(tempfile.mkdtemp(prefix="mesh-rate-", dir="/tmp"))
    socket = workdir / "redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(socket), "--save", "",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"unix://{socket}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_rate_is_counted_over_a_unix_socket_redis(
    settings: Settings, socket_redis: str, error_schema: dict[str, Any], tenant: str, record: Record
) -> None:
    app = create_app(settings.model_copy(update={"redis_url": socket_redis, "rate_limit": RATE}))
    app.test_client_class = ApiClient
    try:
        refused = exhaust(client_of(app, error_schema, new_key(app, tenant)))
    finally:
        app.extensions["mesh"].close()

    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    counted = redis.Redis.from_url(socket_redis)
    assert counted.keys("mesh-rate:*"), "the count is not on the socket's Redis"
    counted.close()


def test_while_redis_is_away_each_process_counts_the_rate_itself(
    settings: Settings, error_schema: dict[str, Any], tenant: str, record: Record
) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(settings.model_copy(update={"redis_url": nothing_listens, "rate_limit": RATE}))
    app.test_client_class = ApiClient
    try:
        started = time.monotonic()
        refused = exhaust(client_of(app, error_schema, new_key(app, tenant)))
        took = time.monotonic() - started
    finally:
        app.extensions["mesh"].close()

    assert refused.status_code == 429  # answered, and limited all the same: never a 500
    assert took < 5


def test_networks_fill_the_tenants_quota_and_the_next_is_refused_storing_nothing(
    client: ApiClient, record: Record
) -> None:
    for i in range(NETWORKS_QUOTA):
        created = client.post(NETWORKS, json={"name": f"net {i}"})
        assert created.status_code == 201, created.get_data(as_text=True)

    before = record.snapshot()
    refused = client.post(NETWORKS, json={"name": "one too many"})

    body = assert_error(refused, 422, field=None, problem="quota networks_per_tenant is 3")
    assert body["errors"] == {"quota": {"networks_per_tenant": ["at most 3"]}}
    assert record.snapshot() == before
    assert record.count("networks") == NETWORKS_QUOTA


def test_agents_fill_the_networks_quota_and_the_next_is_refused_storing_nothing(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    agents = f"{NETWORKS}/{network['id']}/agents"
    for name in ("designer", "second designer"):  # the default team's 7, then 8 and 9
        added = client.post(agents, json={"type": "design", "name": name})
        assert added.status_code == 201, added.get_data(as_text=True)

    before = record.snapshot()
    refused = client.post(agents, json={"type": "design", "name": "tenth"})

    assert_error(refused, 422, field=None, problem="quota agents_per_network is 9")
    assert record.snapshot() == before
    assert record.count("agents", network_id=network["id"]) == AGENTS_QUOTA


def test_memory_fills_the_networks_quota_and_the_next_item_is_refused_storing_nothing(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    memory = f"{NETWORKS}/{network['id']}/memory"
    for i in range(MEMORY_QUOTA):
        added = client.post(memory, json={"type": "fact", "content": f"fact {i}"})
        assert added.status_code == 201, added.get_data(as_text=True)

    before = record.snapshot()
    refused = client.post(memory, json={"type": "fact", "content": "one too many"})

    assert_error(refused, 422, field=None, problem="quota memory_items_per_network is 3")
    assert record.snapshot() == before


def test_tasks_in_flight_past_the_quota_get_429_and_a_retry_after_one_finishes_passes(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    tasks = f"{NETWORKS}/{network['id']}/tasks"
    held = {"description": "Draft the launch email", "auto_process": False}
    submitted = [client.post(tasks, json=held) for _ in range(TASKS_QUOTA)]
    assert [s.status_code for s in submitted] == [202] * TASKS_QUOTA

    before = record.snapshot()
    refused = client.post(tasks, json=held)

    assert_error(refused, 429, field=None, problem="quota tasks_in_flight is 3")
    assert int(refused.headers["Retry-After"]) > 0
    assert record.snapshot() == before

    record.set_task_status(submitted[0].get_json()["id"], "completed")
    assert client.post(tasks, json=held).status_code == 202


def test_concurrent_network_creates_at_the_edge_never_pass_the_quota(
    app: Flask,
    client: ApiClient,
    error_schema: dict[str, Any],
    api_key: str,
    engine: sa.Engine,
    record: Record,
) -> None:
    for i in range(NETWORKS_QUOTA - 1):
        assert client.post(NETWORKS, json={"name": f"net {i}"}).status_code == 201

    def create(i: int) -> Callable[[], int]:
        caller = client_of(app, error_schema, api_key)
        return lambda: caller.post(NETWORKS, json={"name": f"racer {i}"}).status_code

    # Inserts wait behind the table lock while reads go on: without the quota's own lock,
    # every racer would count the same free slot before any of them inserts.
    statuses = race(engine, "LOCK TABLE networks IN SHARE MODE", {}, [create(i) for i in range(5)])

    assert sorted(statuses) == [201, 422, 422, 422, 422]
    assert record.count("networks") == NETWORKS_QUOTA


def test_concurrent_submits_at_the_edge_never_pass_the_tasks_in_flight_quota(
    app: Flask,
    client: ApiClient,
    error_schema: dict[str, Any],
    api_key: str,
    network: dict[str, Any],
    engine: sa.Engine,
    record: Record,
) -> None:
    tasks = f"{NETWORKS}/{network['id']}/tasks"
    held = {"description": "Draft the launch email", "auto_process": False}
    for _ in range(TASKS_QUOTA - 1):
        assert client.post(tasks, json=held).status_code == 202

    def submit() -> Callable[[], int]:
        caller = client_of(app, error_schema, api_key)
        return lambda: caller.post(tasks, json=held).status_code

    statuses = race(engine, "LOCK TABLE tasks IN SHARE MODE", {}, [submit() for _ in range(5)])

    assert sorted(statuses) == [202, 429, 429, 429, 429]
    assert record.count("tasks") == TASKS_QUOTA


def big_network() -> bytes:
    return json.dumps({"name": "big", "description": "x" * MiB}).encode()


def test_a_body_over_1_mib_is_413_naming_the_limit_and_stores_nothing(
    client: ApiClient, record: Record
) -> None:
    before = record.snapshot()

    declared = client.post(NETWORKS, data=big_network(), content_type="application/json")
    chunked = client.post(
        NETWORKS,
        input_stream=io.BytesIO(big_network()),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        # What gunicorn says of a chunked body: the stream ends where the body does.
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert chunked.request.content_length is None
    for refused in (declared, chunked):
        assert_error(refused, 413, field=None, problem="larger than the limit of 1048576 bytes")
    assert record.snapshot() == before


def test_a_chunked_body_under_the_limit_is_read_whole(
    client: ApiClient, network: dict[str, Any]
) -> None:
    context = {f"part {i}": "y" * 10_000 for i in range(60)}  # 600 kB, within every bound
    body = json.dumps({"description": "d", "context": context, "auto_process": False})

    submitted = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        input_stream=io.BytesIO(body.encode()),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert submitted.status_code == 202, submitted.get_data(as_text=True)[:300]
    assert submitted.get_json()["context"] == context


@pytest.mark.parametrize(
    ("path", "body", "field", "problem"),
    [
        ("tasks", {"description": "d" * 10_001}, "description", "10000"),
        ("tasks", {"description": "d", "context": {f"k{i}": i for i in range(101)}},
         "context", "at most 100 keys"),
        ("tasks", {"description": "d", "context": {"brief": "b" * 20_001}},
         "context", "longer than 20000 characters"),
        ("tasks", {"description": "d", "context": {"ids": list(range(1001))}},
         "context", "longer than 1000 items"),
        ("memory", {"type": "fact", "content": "c" * 20_001}, "content", "20000"),
        ("memory", {"type": "fact", "content": "c", "metadata": {f"k{i}": 1 for i in range(101)}},
         "metadata", "at most 100 keys"),
        ("agents", {"type": "design", "name": "n" * 201}, "name", "200"),
        ("agents", {"type": "design", "capabilities": ["c"] * 33}, "capabilities", "32"),
    ],
)  # fmt: skip
def test_a_long_string_or_list_is_422_naming_the_field_and_its_limit(
    client: ApiClient,
    network: dict[str, Any],
    record: Record,
    path: str,
    body: dict[str, Any],
    field: str,
    problem: str,
) -> None:
    before = record.snapshot()

    refused = client.post(f"{NETWORKS}/{network['id']}/{path}", json=body)

    assert_error(refused, 422, field=field, problem=problem)
    assert record.snapshot() == before


def test_a_network_with_too_many_agents_in_its_create_is_422_naming_agents(
    client: ApiClient, record: Record
) -> None:
    team = [{"type": "coordinator"}, {"type": "critic"}] + [{"type": "research"}] * 31

    refused = client.post(NETWORKS, json={"name": "crowd", "agents": team})

    assert_error(refused, 422, field="agents", problem="32")
    assert record.count("networks") == 0


def test_the_openapi_document_shows_the_bounds(client: ApiClient) -> None:
    schemas = client.get(f"{API}/openapi.json").get_json()["components"]["schemas"]

    task, memory = schemas["TaskCreate"]["properties"], schemas["MemoryCreate"]["properties"]
    assert task["description"]["maxLength"] == 10_000
    assert task["context"]["maxProperties"] == 100
    assert memory["content"]["maxLength"] == 20_000
    assert memory["metadata"]["maxProperties"] == 100
    assert schemas["NetworkCreate"]["properties"]["agents"]["maxItems"] == 32
    assert schemas["AgentCreate"]["properties"]["capabilities"]["maxItems"] == 32
    assert schemas["AgentCreate"]["properties"]["name"]["maxLength"] == 200


@pytest.mark.parametrize("value", ["", "lots", "10/fortnight"])
def test_a_rate_limit_that_does_not_parse_stops_the_settings_naming_it(value: str) -> None:
    with pytest.raises(ValueError, match=r"MESH_RATE_LIMIT .* is not a rate limit like"):
        Settings(rate_limit=value)


def test_a_rate_limit_of_none_counts_nothing(
    settings: Settings, error_schema: dict[str, Any], tenant: str, record: Record
) -> None:
    app = create_app(
        settings.model_copy(update={"rate_limit": Settings(rate_limit="None").rate_limit})
    )
    app.test_client_class = ApiClient
    try:
        client = client_of(app, error_schema, new_key(app, tenant))
        answers = [client.get(NETWORKS) for _ in range(5)]
    finally:
        app.extensions["mesh"].close()

    assert [a.status_code for a in answers] == [200] * 5
    assert all(rate_headers(a) == {} for a in answers)
