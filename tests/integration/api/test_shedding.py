"""Load shedding: an API process at its bound of requests at work refuses the next at once
(503, Retry-After, Mesh's error shape) and does nothing for it; waiting clients and health
checks are never refused.

The bound is reached by holding requests open in threads against a stand-in app (counting is
what the shedder does), and on the real app by setting its count at the bound.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import Client

from meshapi.shedding import LoadShedder
from meshcore.settings import Settings
from tests.integration.api.client import NETWORKS, ApiClient

pytestmark = pytest.mark.integration

BOUND = 3


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_requests_in_flight": BOUND})


@pytest.fixture
def at_the_bound(app: Flask) -> Iterator[LoadShedder]:
    shedder = app.wsgi_app
    assert isinstance(shedder, LoadShedder)
    shedder.in_flight = BOUND
    yield shedder
    shedder.in_flight = 0


def test_past_the_bound_a_request_is_refused_at_once_with_retry_after(
    client: ApiClient, at_the_bound: LoadShedder
) -> None:
    response = client.post(NETWORKS, json={"name": "never-made", "description": ""})

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert body["code"] == 503 and "MESH_MAX_REQUESTS_IN_FLIGHT" in body["message"]
    at_the_bound.in_flight = 0
    names = [n["name"] for n in client.get(f"{NETWORKS}?page_size=100").get_json()]
    assert "never-made" not in names  # refused before any work


def test_health_checks_and_waiting_clients_are_never_refused(
    client: ApiClient, queued_task: dict[str, Any], at_the_bound: LoadShedder
) -> None:
    task = f"{NETWORKS}/{queued_task['network_id']}/tasks/{queued_task['id']}"

    assert client.get("/healthz").status_code == 200
    assert client.get(f"{task}?wait=0.2", headers={"If-None-Match": '"1"'}).status_code == 304
    assert client.get(f"{task}/events").status_code == 200
    # The same read, not waiting: refused (the test client checks its body is an Error).
    assert client.get(task).status_code == 503


def test_requests_at_work_are_counted_and_the_count_returns_to_zero() -> None:
    release, arrived = threading.Event(), threading.Semaphore(0)

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        arrived.release()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    shedder = LoadShedder(slow, 2)
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(Client(shedder).get("/x").status_code))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
        arrived.acquire(timeout=10)

    refused = Client(shedder).get("/x")
    release.set()
    for thread in threads:
        thread.join(10)

    assert refused.status_code == 503 and json.loads(refused.data)["code"] == 503
    assert answers == [200, 200]
    assert shedder.in_flight == 0
    assert Client(shedder).get("/x").status_code == 200
