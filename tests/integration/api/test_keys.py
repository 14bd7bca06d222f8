"""/api/mesh/keys: an admin key manages the keys of its own tenant, and only those."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshcore.domain.keys import Scope, parse_key
from tests.integration.api.client import API, NETWORKS, ApiClient, assert_error, bearer, new_key
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

KEYS = f"{API}/keys"


def create(client: ApiClient, **body: object) -> dict[str, Any]:
    response = client.post(KEYS, json={"scopes": ["read"], **body})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_a_created_key_is_shown_once_whole_and_works_at_once(
    client: ApiClient, tenant: str, engine: sa.Engine
) -> None:
    created = create(client, name="backend", scopes=["write", "read"])

    assert set(created) == {"id", "key", "tenant", "scopes", "name", "created_at"}
    assert created["key"].startswith(f"mesh_{created['id']}_")
    assert (created["tenant"], created["scopes"], created["name"]) == (
        tenant,
        ["read", "write"],
        "backend",
    )
    assert client.get(NETWORKS, headers=bearer(created["key"])).status_code == 200
    with engine.connect() as db:
        row = db.execute(sa.text("SELECT * FROM api_keys WHERE id = :id"), {"id": created["id"]})
        stored = repr(row.one())
    assert parse_key(created["key"])[1] not in stored


def test_a_key_is_made_for_the_callers_tenant_whatever_the_body_says(
    client: ApiClient,
    record: Record,
    other_tenant: str,
    engine: sa.Engine,
    redis_client: redis.Redis,
) -> None:
    before = record.snapshot()

    response = client.post(KEYS, json={"scopes": ["admin"], "tenant": other_tenant})

    assert_error(response, 422, field="tenant", problem="unknown field")
    assert record.snapshot() == before
    assert Record(engine, redis_client, other_tenant).count("api_keys") == 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "missing data"),
        ({"scopes": []}, "length"),
        ({"scopes": ["root"]}, "must be one of"),
        ({"scopes": "read"}, "not a valid list"),
        ({"scopes": ["read"], "name": ""}, "length"),
        ({"scopes": ["read"], "name": "x" * 201}, "length"),
    ],
)
def test_a_bad_key_request_is_a_422_naming_the_field_and_stores_nothing(
    client: ApiClient, record: Record, body: dict[str, Any], problem: str
) -> None:
    before = record.snapshot()

    response = client.post(KEYS, json=body)

    assert_error(response, 422, field="name" if "name" in body else "scopes", problem=problem)
    assert record.snapshot() == before


def test_the_list_has_the_tenants_keys_only_and_never_a_secret(
    client: ApiClient, app: Flask, api_key: str, other_tenant: str
) -> None:
    mine = create(client, name="mine")
    theirs = new_key(app, other_tenant)

    response = client.get(KEYS)

    assert response.status_code == 200
    listed = response.get_json()
    assert {k["id"] for k in listed} == {parse_key(api_key)[0], mine["id"]}
    assert all(k["revoked_at"] is None for k in listed)
    text = response.get_data(as_text=True)
    for key in (api_key, mine["key"], theirs):
        assert parse_key(key)[1] not in text
    assert "digest" not in text and parse_key(theirs)[0] not in text


def test_the_list_is_paginated_like_the_others(client: ApiClient) -> None:
    for number in range(3):
        create(client, name=f"key {number}")

    response = client.get(KEYS, query_string={"page": 2, "page_size": 2})

    assert response.status_code == 200
    assert [k["name"] for k in response.get_json()] == ["key 1", "key 2"]
    assert '"total": 4' in response.headers["X-Pagination"]


def test_a_revoked_key_is_refused_and_listed_as_revoked(client: ApiClient) -> None:
    created = create(client, name="leaked")

    assert client.delete(f"{KEYS}/{created['id']}").status_code == 204

    refused = client.get(NETWORKS, headers=bearer(created["key"]))
    assert_error(refused, 401, field=None, problem="revoked")
    listed = {k["id"]: k for k in client.get(KEYS).get_json()}
    assert listed[created["id"]]["revoked_at"] is not None
    assert client.delete(f"{KEYS}/{created['id']}").status_code == 204  # revoking again: no-op


def test_another_tenants_key_id_is_404_exactly_like_a_missing_one(
    client: ApiClient, app: Flask, other_tenant: str
) -> None:
    theirs = new_key(app, other_tenant)
    their_id, missing_id = parse_key(theirs)[0], "0123456789abcdef"

    foreign = client.delete(f"{KEYS}/{their_id}")
    missing = client.delete(f"{KEYS}/{missing_id}")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_json()["message"].replace(their_id, "?") == missing.get_json()[
        "message"
    ].replace(missing_id, "?")
    assert other_tenant not in foreign.get_data(as_text=True)
    assert client.get(NETWORKS, headers=bearer(theirs)).status_code == 200  # still valid


@pytest.mark.parametrize("key_id", ["not-a-key-id-at", "ABCDEF0123456789", "x", "%00" * 16])
def test_what_cannot_be_a_key_id_is_a_404(client: ApiClient, key_id: str) -> None:
    assert client.delete(f"{KEYS}/{key_id}").status_code == 404


def test_managing_keys_needs_the_admin_scope(client: ApiClient, app: Flask, tenant: str) -> None:
    writer = bearer(new_key(app, tenant, frozenset({Scope.READ, Scope.WRITE})))

    for method in ("get", "post"):
        response = client.open(KEYS, method=method, json={"scopes": ["read"]}, headers=writer)
        assert_error(response, 403, field=None, problem="admin scope")
