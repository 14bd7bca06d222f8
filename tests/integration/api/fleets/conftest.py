"""The API beside a fleet of real workers (`mesh worker`) on a Redis of the module's own.

A module here says what its fleet is: `WORKERS`, the workers (names, queues, concurrency)
that take its messages, and, if it needs any, `SETTINGS`, what the API's settings add. Once
a module, these fixtures start that Redis and those workers and point the module's API (the
`app` of tests/integration/api/conftest.py) at that Redis; each test's client is of the
module's tenant, and after the test all the tenant stored is removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshcore.settings import Settings
from tests.drills.harness import PrivateRedis
from tests.integration.api.client import ApiClient
from tests.integration.api.private_api import keyed_client, private_redis_in, settings_on
from tests.integration.api.record import Record
from tests.integration.fleet import Fleet, fleet


@pytest.fixture(scope="module")
def private_redis(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateRedis]:
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    with private_redis_in(Path(tmp_path_factory.mktemp(f"{name}-redis"))) as server:
        yield server


@pytest.fixture(scope="module")
def workers(
    request: pytest.FixtureRequest, database_url: str, private_redis: PrivateRedis
) -> Iterator[Fleet]:
    with fleet(database_url, private_redis.url, request.module.WORKERS) as running:
        yield running


@pytest.fixture(scope="module")
def settings(
    request: pytest.FixtureRequest, database_url: str, private_redis: PrivateRedis, tenant: str
) -> Settings:
    """The API's settings, on the module's Redis, with what its SETTINGS add."""
    extra = getattr(request.module, "SETTINGS", {})
    return settings_on(database_url, private_redis.url, tenant, **extra)


@pytest.fixture
def broker(private_redis: PrivateRedis) -> Iterator[redis.Redis]:
    """The module's Redis, where its messages wait for its workers."""
    client = redis.Redis.from_url(private_redis.url)
    yield client
    client.close()


@pytest.fixture
def client(
    workers: Fleet,
    app: Flask,
    error_schema: dict[str, Any],
    engine: sa.Engine,
    broker: redis.Redis,
    tenant: str,
) -> Iterator[ApiClient]:
    """A client of the module's tenant, its workers running; after the test, all the tenant
    stored is removed."""
    yield keyed_client(app, error_schema, tenant)
    Record(engine, broker, tenant).purge()
