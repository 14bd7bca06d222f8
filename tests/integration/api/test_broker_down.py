"""A submit while the broker (Redis) does not answer: accepted at once, and marked for the
first sweep after the broker returns, not for the stall timeout."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.e2e.server import free_port
from tests.integration.api.client import NETWORKS, ApiClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(database_url: str, tenant: str) -> Settings:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    return Settings(
        database_url=database_url,
        redis_url=nothing_listens,
        tenant=tenant,
        api_key_secret=API_KEY_SECRET,
        data_keys=DATA_KEYS,
    )


def test_a_submit_while_the_broker_is_down_is_accepted_and_due_at_the_next_sweep(
    client: ApiClient, network: dict[str, Any], app: Flask
) -> None:
    started = time.monotonic()
    response = client.post(
        f"{NETWORKS}/{network['id']}/tasks", json={"description": "Launch email"}
    )
    took = time.monotonic() - started

    assert response.status_code == 202, response.get_data(as_text=True)
    assert took < 2
    assert client.get(response.headers["Location"]).get_json()["status"] == "queued"
    # The sweep finds it although it is new and MESH_STALL_SECONDS (90) has not passed.
    mesh = app.extensions["mesh"]
    stall = timedelta(seconds=mesh.settings.stall_seconds)
    stalled = mesh.uow.stalled(datetime.now(UTC) - stall, limit=10_000)
    assert response.get_json()["id"] in {str(ref.task_id) for ref in stalled}
