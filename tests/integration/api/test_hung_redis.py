"""A Redis that hangs (accepts, never answers) is reported unready in bounded time, and the
record's reads go on being served."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.drills.harness import PrivateRedis
from tests.integration.api.client import NETWORKS, ApiClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(Path(tmp_path_factory.mktemp("hung-redis")))
    server.start()
    yield server
    server.thaw()
    server.stop()


@pytest.fixture(scope="module")
def settings(database_url: str, tenant: str, private_redis: PrivateRedis) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=private_redis.url,
        tenant=tenant,
        api_key_secret=API_KEY_SECRET,
        data_keys=DATA_KEYS,
    )


def test_a_hung_redis_makes_readyz_answer_503_in_bounded_time_while_reads_go_on(
    client: ApiClient, network: dict, private_redis: PrivateRedis
) -> None:
    held = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Launch email", "auto_process": False},
    )
    assert client.get("/readyz").status_code == 200  # the client is connected before the hang

    private_redis.freeze()
    try:
        started = time.monotonic()
        ready = client.get("/readyz")
        took = time.monotonic() - started
        task = client.get(held.headers["Location"])
    finally:
        private_redis.thaw()

    assert ready.status_code == 503
    assert ready.get_json()["errors"]["checks"]["redis"] is False
    assert took < 10
    assert task.status_code == 200
    assert task.get_json()["status"] == "queued"
