"""Signed webhooks against real Postgres and Redis: registration and its refusals over the
API, deliveries signed as the standardwebhooks library verifies, retries recorded on the task,
and a real worker on the `webhooks` queue delivering on the third attempt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
import standardwebhooks
from flask import Flask

from meshapi.app import create_app
from meshcore import bootstrap
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, TaskStatus
from meshcore.domain.webhooks import Webhook
from meshcore.ports import DeliveryRef
from meshcore.settings import Settings
from meshworkers.app import create_celery
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.integration.api.client import NETWORKS, ApiClient, new_key
from tests.integration.api.private_api import settings_on
from tests.integration.api.record import Record
from tests.integration.fleet import WorkerSpec, fleet

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers each POST with the next scripted status."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], str]] = field(default_factory=list)
    url: str = ""

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} of {count} deliveries came"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            found.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = found.statuses.pop(0) if found.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_port}/hooks/mesh"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, tenant: str) -> Settings:
    """This module's API lets webhooks reach loopback, and retries them at once."""
    return settings_on(
        database_url, redis_url, tenant,
        webhook_allow_private=True, webhook_retry_base_seconds=0.05, webhook_retry_max_seconds=0.1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def strict_app(database_url: str, redis_url: str) -> Iterator[Flask]:
    """The API as deployed: private receivers refused."""
    app = create_app(
        Settings(
            database_url=database_url,
            redis_url=redis_url,
            api_key_secret=API_KEY_SECRET,
            data_keys=DATA_KEYS,
        )
    )
    app.test_client_class = ApiClient
    yield app
    app.extensions["mesh"].close()


def create_network(client: ApiClient, webhook: dict[str, Any] | None) -> dict[str, Any]:
    config = {"webhook": webhook} if webhook is not None else {}
    response = client.post(NETWORKS, json={"name": "hooked", "config": config})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def cancelled_task(client: ApiClient, network_id: str, **extra: Any) -> dict[str, Any]:
    """A task that ends at once (held, then cancelled): its ending is an event to deliver."""
    tasks = f"{NETWORKS}/{network_id}/tasks"
    held = client.post(tasks, json={"description": "Draft it", "auto_process": False, **extra})
    assert held.status_code == 202, held.get_data(as_text=True)
    task = held.get_json()
    cancelled = client.post(f"{tasks}/{task['id']}/cancel")
    assert cancelled.status_code == 202, cancelled.get_data(as_text=True)
    return task


def delivery_ids(engine: sa.Engine, task_id: str) -> list[UUID]:
    with engine.connect() as db:
        return list(
            db.execute(
                sa.text("SELECT id FROM webhook_deliveries WHERE task_id = :t ORDER BY event_seq"),
                {"t": task_id},
            ).scalars()
        )


def test_a_delivery_to_loopback_verifies_with_the_standard_webhooks_library(
    app: Flask, client: ApiClient, receiver: Receiver, engine: sa.Engine, tenant: str
) -> None:
    network = create_network(client, {"url": receiver.url})
    secret = network["webhook_secret"]
    assert secret.startswith("whsec_")
    assert "webhook_secret" not in client.get(f"{NETWORKS}/{network['id']}").get_json()
    task = cancelled_task(client, network["id"])

    [delivery] = delivery_ids(engine, task["id"])
    app.extensions["mesh"].webhooks.deliver(DeliveryRef(tenant, delivery))

    headers, body = receiver.received[0]
    verified = standardwebhooks.Webhook(secret).verify(body, headers)
    assert verified["type"] == "task.cancelled"
    assert verified["data"]["task_id"] == task["id"]
    assert verified["data"]["status"] == "cancelled"


def test_a_receiver_answering_500_twice_gets_the_third_attempt_each_on_the_task(
    app: Flask, client: ApiClient, receiver: Receiver, engine: sa.Engine, tenant: str
) -> None:
    receiver.statuses = [500, 500, 200]
    network = create_network(client, None)
    task = cancelled_task(client, network["id"], webhook={"url": receiver.url})
    [delivery] = delivery_ids(engine, task["id"])
    webhooks = app.extensions["mesh"].webhooks

    outcomes = []
    for _ in range(3):
        time.sleep(0.15)  # past the retry's spacing
        outcomes.append(webhooks.deliver(DeliveryRef(tenant, delivery)))

    assert [o.value for o in outcomes] == ["pending", "pending", "delivered"]
    url = f"{NETWORKS}/{network['id']}/tasks/{task['id']}"
    history = client.get(url).get_json()["history"]
    attempts = [e for e in history if e["kind"] == "webhook"]
    assert [a["detail"]["status_code"] for a in attempts] == [500, 500, 200]
    assert [a["detail"]["attempt"] for a in attempts] == [1, 2, 3]
    # The stream still ends, after the attempts.
    stream = client.get(f"{url}/events").get_data(as_text=True)
    assert stream.rstrip().endswith("}") and stream.count("event: webhook.attempt") == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/hook",
        "http://[::1]/hook",
    ],
)
def test_a_private_receiver_is_refused_without_the_setting_and_nothing_is_stored(
    strict_app: Flask, tenant: str, record: Record, url: str, error_schema: dict[str, Any]
) -> None:
    client = strict_app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    client.use_key(new_key(strict_app, tenant))
    before = record.snapshot()

    response = client.post(NETWORKS, json={"name": "n", "config": {"webhook": {"url": url}}})

    assert response.status_code == 422
    assert "config.webhook.url" in response.get_json()["errors"]["json"]
    assert record.snapshot() == before


def test_a_task_webhook_is_refused_likewise(
    strict_app: Flask, tenant: str, record: Record, error_schema: dict[str, Any]
) -> None:
    client = strict_app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    client.use_key(new_key(strict_app, tenant))
    network = create_network(client, None)
    before = record.snapshot()

    response = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Draft it", "webhook": {"url": "http://169.254.169.254/"}},
    )

    assert response.status_code == 422
    assert "webhook.url" in response.get_json()["errors"]["json"]
    assert record.snapshot() == before


def test_bad_webhook_input_is_a_422_naming_the_field(client: ApiClient, record: Record) -> None:
    before = record.snapshot()
    for webhook, problem in [
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "https://example.com/", "events": ["step.finished"]}, "events"),
    ]:
        response = client.post(NETWORKS, json={"name": "n", "config": {"webhook": webhook}})
        assert response.status_code == 422
        assert problem in response.get_json()["errors"]["json"]["config"]["webhook"]
    assert record.snapshot() == before


def test_rotating_the_secret_signs_with_the_new_one_only(
    app: Flask, client: ApiClient, receiver: Receiver, engine: sa.Engine, tenant: str
) -> None:
    network = create_network(client, {"url": receiver.url})
    response = client.post(f"{NETWORKS}/{network['id']}/webhook-secret")
    assert response.status_code == 201
    rotated = response.get_json()["webhook_secret"]
    assert rotated.startswith("whsec_") and rotated != network["webhook_secret"]

    task = cancelled_task(client, network["id"])
    [delivery] = delivery_ids(engine, task["id"])
    app.extensions["mesh"].webhooks.deliver(DeliveryRef(tenant, delivery))

    headers, body = receiver.received[0]
    standardwebhooks.Webhook(rotated).verify(body, headers)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(network["webhook_secret"]).verify(body, headers)


def test_another_tenants_key_cannot_rotate_the_secret(
    app: Flask, client: ApiClient, record: Record
) -> None:
    network = create_network(client, None)
    stranger = app.test_client()
    assert isinstance(stranger, ApiClient)
    stranger.error_schema = client.error_schema
    stranger.use_key(new_key(app, f"{record.tenant}-other"))
    before = record.snapshot()

    response = stranger.post(f"{NETWORKS}/{network['id']}/webhook-secret")

    assert response.status_code == 404
    assert record.snapshot() == before


def test_a_worker_on_the_webhooks_queue_delivers_on_the_third_attempt(
    database_url: str, redis_url: str, receiver: Receiver, tenant: str
) -> None:
    receiver.statuses = [500, 500, 200]
    env = {
        "MESH_WEBHOOK_ALLOW_PRIVATE": "true",
        "MESH_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "MESH_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
    }
    url = redis_url.rsplit("/", 1)[0] + "/7"
    spec = WorkerSpec("webhooks@mesh-test", ["webhooks"], concurrency=2)
    with fleet(database_url, url, [spec], env=env) as running:
        settings = running.settings.model_copy(update={"webhook_allow_private": True})
        mesh = bootstrap.build(settings, create_celery(settings))
        services = mesh.tenant(f"{tenant}-fleet")
        network = services.networks.create(
            name="hooked",
            description="",
            config=NetworkConfig(webhook=Webhook(receiver.url)),
        )
        task = services.tasks.submit(
            network.id,
            description="Draft it",
            context={},
            priority=Priority.NORMAL,
            auto_process=False,
        )
        services.tasks.cancel(network.id, task.id)  # the commit enqueues its delivery

        receiver.wait_for(3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            history = services.tasks.get(network.id, task.id).history
            attempts = [e for e in history if e.type == "webhook.attempt"]
            if len(attempts) == 3:
                break
            time.sleep(0.1)
        services.networks.delete(network.id)
        mesh.close()

    assert services.tasks  # the fleet's services were this tenant's
    assert [a.detail["status_code"] for a in attempts] == [500, 500, 200]
    assert attempts[-1].detail["outcome"] == "delivered"
    assert all(a.status is TaskStatus.CANCELLED for a in attempts)
    headers, body = receiver.received[-1]
    assert json.loads(body)["type"] == "task.cancelled"
    assert network.webhook_secret is not None
    standardwebhooks.Webhook(network.webhook_secret).verify(body, headers)
