"""The API of a test module on a Redis of its own, beside that module's workers: what those
modules (tests/integration/api/fleets: offline runs, agent types, tools, approval, learning)
share of their set-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from meshcore.domain.agent_types import own_queue
from meshcore.domain.network import SPECIALISTS, AgentType
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.drills.harness import PrivateRedis
from tests.integration.api.client import ApiClient, new_key

# The queues of the built-in types: the specialists' and the critic's.
BUILTIN_QUEUES = tuple(own_queue(t) for t in (*SPECIALISTS, AgentType.CRITIC))


@contextmanager
def private_redis_in(directory: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def settings_on(database_url: str, redis_url: str, tenant: str, **extra: Any) -> Settings:
    """The API's settings, on the module's Redis (where its workers take their messages)."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        tenant=tenant,
        api_key_secret=API_KEY_SECRET,
        data_keys=DATA_KEYS,
        **extra,
    )


def keyed_client(app: Flask, error_schema: dict[str, Any], tenant: str) -> ApiClient:
    """A client of `app` with a new key of `tenant`, checking every error body it gets."""
    client = app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    client.use_key(new_key(app, tenant))
    return client
