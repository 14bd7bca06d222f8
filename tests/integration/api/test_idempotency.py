"""Idempotency-Key on the four creates: a retry answers what the first made and creates nothing;
another request under the key is refused; concurrent requests under one key make one."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from flask import Flask

from meshapi.app import create_app
from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.migrate import upgrade
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.integration.api.client import NETWORKS, ApiClient, assert_error, bearer, new_key
from tests.integration.api.race import race
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration


def creates(network: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], int]]:
    """(name, path, body, status) of each create that takes a key."""
    base = f"{NETWORKS}/{network['id']}"
    return [
        ("networks", NETWORKS, {"name": "launch team"}, 201),
        ("tasks", f"{base}/tasks", {"description": "Write it", "auto_process": False}, 202),
        ("agents", f"{base}/agents", {"type": "research", "name": "second researcher"}, 201),
        ("memory_items", f"{base}/memory", {"type": "fact", "content": "Orbit is $4"}, 201),
    ]


CREATES = ["networks", "tasks", "agents", "memory_items"]


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"retry-{uuid4()}"}


@pytest.mark.parametrize("which", CREATES)
def test_a_retry_answers_as_the_first_did_and_creates_nothing(
    client: ApiClient, network: dict[str, Any], record: Record, which: str
) -> None:
    name, path, body, status = next(c for c in creates(network) if c[0] == which)
    headers = key()
    first = client.post(path, json=body, headers=headers)
    assert first.status_code == status, first.get_data(as_text=True)
    stored = record.snapshot()

    # The same body, with its keys in another order, is the same request.
    retried = client.post(path, json=dict(reversed(list(body.items()))), headers=headers)

    assert retried.status_code == status
    assert retried.get_json()["id"] == first.get_json()["id"]
    assert record.snapshot() == stored
    if name == "tasks":
        assert retried.headers["Location"] == first.headers["Location"]


@pytest.mark.parametrize("which", CREATES)
def test_the_key_with_another_body_is_a_422_naming_the_header(
    client: ApiClient, network: dict[str, Any], record: Record, which: str
) -> None:
    _name, path, body, status = next(c for c in creates(network) if c[0] == which)
    headers = key()
    assert client.post(path, json=body, headers=headers).status_code == status
    stored = record.snapshot()

    other = {**body, "name" if "name" in body else "description": "something else"}
    if which == "memory_items":
        other = {**body, "content": "Orbit is $5"}
    response = client.post(path, json=other, headers=headers)

    assert_error(response, 422, field="Idempotency-Key", problem="used for a different request")
    assert response.get_json()["errors"]["headers"]["Idempotency-Key"]
    assert record.snapshot() == stored


def test_the_key_on_another_path_is_another_request(
    client: ApiClient, network: dict[str, Any]
) -> None:
    headers = key()
    assert client.post(NETWORKS, json={"name": "a"}, headers=headers).status_code == 201

    response = client.post(
        f"{NETWORKS}/{network['id']}/agents", json={"name": "a"}, headers=headers
    )

    assert response.status_code == 422


def test_without_a_key_every_create_makes_a_new_resource(
    client: ApiClient, network: dict[str, Any], record: Record
) -> None:
    url = f"{NETWORKS}/{network['id']}/tasks"
    body = {"description": "Write it", "auto_process": False}

    first, second = client.post(url, json=body), client.post(url, json=body)

    assert first.get_json()["id"] != second.get_json()["id"]
    assert record.count("tasks") == 2


@pytest.mark.parametrize(
    ("value", "problem"),
    [("x" * 256, "between 1 and 255"), ("tab\there", "printable ASCII"), ("é-key", "printable")],
)
def test_a_malformed_key_is_a_422_naming_the_header(
    client: ApiClient, network: dict[str, Any], record: Record, value: str, problem: str
) -> None:
    stored = record.snapshot()

    response = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Write it"},
        headers={"Idempotency-Key": value.encode("utf-8").decode("latin-1")},
    )

    assert_error(response, 422, field="Idempotency-Key", problem=problem)
    assert record.snapshot() == stored


def test_a_key_is_its_tenants_alone(
    client: ApiClient, app: Flask, network: dict[str, Any], record: Record
) -> None:
    headers = key()
    mine = client.post(NETWORKS, json={"name": "mine"}, headers=headers)
    other_key = new_key(app, f"{record.tenant}-other")
    try:
        theirs = client.post(
            NETWORKS, json={"name": "mine"}, headers={**headers, **bearer(other_key)}
        )
        assert theirs.status_code == 201
        assert theirs.get_json()["id"] != mine.get_json()["id"]
        # ... and the other tenant's replay finds its own network, not this one.
        again = client.post(
            NETWORKS, json={"name": "mine"}, headers={**headers, **bearer(other_key)}
        )
        assert again.get_json()["id"] == theirs.get_json()["id"]
    finally:
        Record(record._engine, record._redis, f"{record.tenant}-other").purge()


def test_a_key_past_its_lifetime_makes_a_new_resource(
    client: ApiClient, network: dict[str, Any], engine: sa.Engine, record: Record
) -> None:
    headers = key()
    url = f"{NETWORKS}/{network['id']}/tasks"
    body = {"description": "Write it", "auto_process": False}
    first = client.post(url, json=body, headers=headers).get_json()
    with engine.begin() as db:
        db.execute(
            sa.text("UPDATE idempotency_keys SET created_at = :long_ago WHERE key = :key"),
            {"long_ago": datetime(2020, 1, 1, tzinfo=UTC), "key": headers["Idempotency-Key"]},
        )

    later = client.post(url, json=body, headers=headers).get_json()

    assert later["id"] != first["id"]
    assert record.count("tasks") == 2


def test_twenty_concurrent_submits_with_one_key_create_one_task(
    client: ApiClient, app: Flask, api_key: str, network: dict[str, Any], engine: sa.Engine,
    record: Record, tenant: str,
) -> None:  # fmt: skip
    headers = {**key(), **bearer(api_key)}
    url = f"{NETWORKS}/{network['id']}/tasks"
    body = {"description": "Write the launch email", "auto_process": False}

    def submit() -> Any:
        return app.test_client().post(url, json=body, headers=headers)

    # A row under the key, held uncommitted, keeps all twenty waiting on it until they all
    # are; its rollback lets them go at once (race.py).
    hold = (
        "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, created, created_at)"
        " VALUES (:t, :k, 'held', 'task', now())"
    )
    responses = race(engine, hold, {"t": tenant, "k": headers["Idempotency-Key"]},
                     [submit] * 20)  # fmt: skip

    assert [r.status_code for r in responses] == [202] * 20
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert record.count("tasks") == 1


def test_a_retried_submit_on_the_embedded_record_answers_at_once(tmp_path: Any) -> None:
    # SQLite lets one connection write at a time: a replay that read the task in a second
    # connection while its own still held the write lock waited 30 s, then answered 503.
    url = f"sqlite:///{tmp_path / 'mesh.db'}"
    upgrade(url)
    app = create_app(
        Settings(
            database_url=url,
            redis_url="redis://127.0.0.1:6379/13",
            api_key_secret=API_KEY_SECRET,
            data_keys=DATA_KEYS,
            dev_api_key="mesh-tests-sqlite-replay",
        )
    )
    try:
        client = app.test_client()
        auth = bearer("mesh-tests-sqlite-replay")
        network = client.post(NETWORKS, json={"name": "embedded"}, headers=auth).get_json()
        url = f"{NETWORKS}/{network['id']}/tasks"
        headers = {**auth, **key()}
        body = {"description": "Write it", "auto_process": False}
        first = client.post(url, json=body, headers=headers)
        started = time.monotonic()

        again = client.post(url, json=body, headers=headers)

        assert again.status_code == 202, again.get_data(as_text=True)
        assert again.get_json()["id"] == first.get_json()["id"]
        assert time.monotonic() - started < 5
    finally:
        app.extensions["mesh"].close()


def test_keys_past_their_lifetime_are_deleted_a_batch_at_a_time(
    client: ApiClient, network: dict[str, Any], engine: sa.Engine, record: Record
) -> None:
    url = f"{NETWORKS}/{network['id']}/tasks"
    for description in ("first", "second", "third"):
        client.post(url, json={"description": description, "auto_process": False}, headers=key())
    with engine.begin() as db:
        db.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = :long_ago"
                " WHERE tenant_id = :t AND key IN (SELECT key FROM idempotency_keys"
                " WHERE tenant_id = :t ORDER BY created_at LIMIT 2)"
            ),
            {"long_ago": datetime(2020, 1, 1, tzinfo=UTC), "t": record.tenant},
        )
    fleet = SqlUnitOfWorkFactory(engine, Sealer.from_text(DATA_KEYS))
    cutoff = datetime(2021, 1, 1, tzinfo=UTC)

    assert fleet.forget_idempotency_keys(cutoff, limit=1) == 1
    assert fleet.forget_idempotency_keys(cutoff, limit=100) >= 1
    assert record.count("idempotency_keys") == 1
    assert record.count("tasks") == 3  # only the keys go
