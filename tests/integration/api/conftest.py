"""The API against real Postgres and Redis: an app per test module, with a tenant of its own.

A tenant of its own keeps lists and counts to what the module made, though tests share one
database; after each test, all the tenant stored is removed, so a test sees only its own.
Each test's client holds a real key of that tenant with every scope (the tenant comes from
the key), made afresh because the teardown removes the tenant's keys with the rest.
No Celery worker runs: a submitted task's message waits on Redis db 9 until that teardown
removes it with the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshapi.app import create_app
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.integration.api.client import API, NETWORKS, ApiClient, new_key
from tests.integration.api.private_api import settings_on
from tests.integration.api.record import Record, purge_queued

# Every tenant of this session starts so, which lets the session's end find its leftovers.
SESSION_TENANTS = f"api-test-{uuid4().hex[:8]}-"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    purge_queued(client, SESSION_TENANTS)
    client.close()


@pytest.fixture(scope="module")
def tenant() -> str:
    return f"{SESSION_TENANTS}{uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, tenant: str) -> Settings:
    return settings_on(database_url, redis_url, tenant)


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.test_client_class = ApiClient
    yield app
    app.extensions["mesh"].close()


@pytest.fixture
def record(engine: sa.Engine, redis_client: redis.Redis, tenant: str) -> Iterator[Record]:
    """The tenant's record; after the test, all the tenant stored is removed."""
    record = Record(engine, redis_client, tenant)
    yield record
    record.purge()


@pytest.fixture(scope="session")
def error_schema(database_url: str, redis_url: str) -> dict[str, Any]:
    """The Error schema as the served OpenAPI document has it."""
    app = create_app(
        Settings(
            database_url=database_url,
            redis_url=redis_url,
            api_key_secret=API_KEY_SECRET,
            data_keys=DATA_KEYS,
        )
    )
    try:
        document = app.test_client().get(f"{API}/openapi.json").get_json()
    finally:
        app.extensions["mesh"].close()
    return document["components"]["schemas"]["Error"]


@pytest.fixture
def api_key(app: Flask, tenant: str, record: Record) -> str:
    """A key of the module's tenant with every scope; the record's teardown removes it."""
    return new_key(app, tenant)


@pytest.fixture
def client(app: Flask, error_schema: dict[str, Any], api_key: str) -> ApiClient:
    """A client of the module's tenant: every request carries `api_key`."""
    client = app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    return client.use_key(api_key)


@pytest.fixture
def other_tenant(engine: sa.Engine, redis_client: redis.Redis) -> Iterator[str]:
    """A second tenant, for what another tenant's key may not reach; removed after the test."""
    tenant = f"{SESSION_TENANTS}other-{uuid4().hex[:8]}"
    yield tenant
    Record(engine, redis_client, tenant).purge()


@pytest.fixture
def network(client: ApiClient) -> dict[str, Any]:
    """A network with the default team of seven."""
    response = client.post(NETWORKS, json={"name": f"net-{uuid4().hex[:8]}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def queued_task(client: ApiClient, network: dict[str, Any]) -> dict[str, Any]:
    """A task held in `queued`: submitted with auto_process false."""
    response = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Draft the launch email", "auto_process": False},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app runs while the test does."""
    ran: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        ran.append(statement)

    engine = app.extensions["mesh"].connections.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    yield ran
    sa.event.remove(engine, "before_cursor_execute", count)
