"""The audit trail: every write and every refusal, who and what and when, never content."""

from __future__ import annotations

import json
import logging
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from flask import Flask
from structlog.testing import capture_logs

from meshcore.domain.errors import RecordUnavailable
from meshcore.domain.keys import Scope, format_key, parse_key
from tests.integration.api.client import API, NETWORKS, ApiClient, bearer
from tests.integration.api.client import new_key as key_of
from tests.integration.api.conftest import SESSION_TENANTS
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

AUDIT = f"{API}/audit"


@pytest.fixture(autouse=True)
def fresh_trail(engine: sa.Engine, tenant: str) -> None:
    """The module's tenant starts each test with an empty trail (the app never deletes one)."""
    with engine.begin() as db:
        db.execute(sa.text("DELETE FROM audit_events WHERE tenant_id = :t"), {"t": tenant})


def trail(client: ApiClient, **query: object) -> list[dict[str, Any]]:
    response = client.get(AUDIT, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def rows_about(engine: sa.Engine, resource_id: str) -> list[dict[str, Any]]:
    """Every audit row, of any tenant or none, naming `resource_id`."""
    with engine.connect() as db:
        found = db.execute(
            sa.text("SELECT * FROM audit_events WHERE resource_id = :r ORDER BY id"),
            {"r": resource_id},
        )
        return [dict(r._mapping) for r in found]


def test_writes_and_refusals_are_recorded_with_route_status_and_key_and_no_content(
    client: ApiClient, api_key: str, engine: sa.Engine, tenant: str
) -> None:
    canary = f"canary-{uuid4().hex}"
    network = client.post(NETWORKS, json={"name": f"n {canary}", "description": canary})
    assert network.status_code == 201
    network_id = network.get_json()["id"]
    memory = f"{NETWORKS}/{network_id}/memory"
    assert client.post(memory, json={"type": "fact", "content": canary}).status_code == 201
    refused = client.post(memory, json={"type": "fact", "content": canary, "confidence": 7})
    assert refused.status_code == 422
    missing = str(uuid4())
    assert client.get(f"{NETWORKS}/{missing}", query_string={"q": canary}).status_code == 404
    assert client.get(f"{NETWORKS}/{network_id}", query_string={"q": canary}).status_code == 200

    events = trail(client)

    key_id = parse_key(api_key)[0]
    seen = [(e["method"], e["route"], e["resource_id"], e["status"]) for e in events]
    assert seen == [
        ("GET", f"{NETWORKS}/{{network_id}}", missing, 404),
        ("POST", f"{NETWORKS}/{{network_id}}/memory", network_id, 422),
        ("POST", f"{NETWORKS}/{{network_id}}/memory", seen[2][2], 201),  # the item's id
        ("POST", NETWORKS, network_id, 201),
    ]
    assert seen[2][2] not in (None, network_id)
    assert {e["key_id"] for e in events} == {key_id}
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    with engine.connect() as db:
        stored = db.execute(
            sa.text("SELECT * FROM audit_events WHERE tenant_id = :t"), {"t": tenant}
        ).all()
    assert len(stored) == 4
    assert canary not in json.dumps([list(map(str, r)) for r in stored])
    assert parse_key(api_key)[1] not in json.dumps([list(map(str, r)) for r in stored])


def test_a_malformed_id_and_a_method_a_route_lacks_are_recorded_under_their_route(
    client: ApiClient,
) -> None:
    assert client.get(f"{NETWORKS}/not-an-id").status_code == 404
    assert client.put(f"{NETWORKS}/{uuid4()}", json={}).status_code == 405
    assert client.post(f"{API}/no-such-thing/secret-in-the-path").status_code == 404

    events = trail(client)

    assert [(e["method"], e["route"], e["resource_id"], e["status"]) for e in events] == [
        ("POST", None, None, 404),  # no route: the path itself is never kept
        ("PUT", f"{NETWORKS}/{{network_id}}", None, 405),
        ("GET", f"{NETWORKS}/{{network_id}}", None, 404),
    ]


def test_refusals_before_a_verified_key_belong_to_no_tenant_but_a_revoked_keys_to_its_own(
    app: Flask, client: ApiClient, anonymous_client: ApiClient, engine: sa.Engine, tenant: str
) -> None:
    revoked = key_of(app, tenant)
    revoked_id = parse_key(revoked)[0]
    app.extensions["mesh"].keys.revoke(revoked_id, tenant_id=tenant)
    key_id, secret = parse_key(revoked)
    guessed = format_key(key_id, secret[::-1])  # the right id, a wrong secret
    cases = {"none": {}, "revoked": bearer(revoked), "guessed": bearer(guessed)}
    targets = {name: str(uuid4()) for name in cases}

    for name, headers in cases.items():
        path = f"{NETWORKS}/{targets[name]}/tasks"
        response = anonymous_client.post(path, json={"description": "x"}, headers=headers)
        assert response.status_code == 401

    charged = {name: rows_about(engine, targets[name]) for name in cases}
    assert [(r["tenant_id"], r["key_id"], r["status"]) for r in charged["none"]] == [
        (None, None, 401)
    ]
    assert [(r["tenant_id"], r["key_id"]) for r in charged["revoked"]] == [(tenant, revoked_id)]
    # Guessing a key's id writes nothing into its tenant's trail.
    assert [(r["tenant_id"], r["key_id"]) for r in charged["guessed"]] == [(None, key_id)]
    shown = [e["resource_id"] for e in trail(client)]
    assert targets["revoked"] in shown
    assert targets["none"] not in shown and targets["guessed"] not in shown


def test_another_tenants_admin_key_sees_none_of_the_events(
    app: Flask, client: ApiClient, record: Record
) -> None:
    assert client.post(NETWORKS, json={"name": "mine"}).status_code == 201
    assert trail(client)
    other = f"{SESSION_TENANTS}other-{uuid4().hex[:8]}"
    try:
        response = client.get(AUDIT, headers=bearer(key_of(app, other)))
        assert response.status_code == 200
        assert response.get_json() == []
        assert json.loads(response.headers["X-Pagination"])["total"] == 0
    finally:
        Record(record._engine, record._redis, other).purge()


def test_the_trail_pages_newest_first_and_stays_put_with_before(client: ApiClient) -> None:
    for _ in range(5):
        assert client.get(f"{NETWORKS}/{uuid4()}").status_code == 404

    first = client.get(AUDIT, query_string={"page_size": 2})
    newest = first.get_json()
    assert len(newest) == 2
    assert json.loads(first.headers["X-Pagination"])["total"] == 5
    assert client.get(f"{NETWORKS}/{uuid4()}").status_code == 404  # the trail grows meanwhile
    anchor = newest[0]["id"] + 1
    second = trail(client, page_size=2, page=2, before=anchor)
    third = trail(client, page_size=2, page=3, before=anchor)

    ids = [e["id"] for e in newest + second + third]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    assert trail(client, before=1) == []
    assert client.get(AUDIT, query_string={"before": "soon"}).status_code == 422


@pytest.mark.parametrize("scopes", [{Scope.READ}, {Scope.WRITE}, {Scope.READ, Scope.WRITE}])
def test_read_and_write_keys_get_403_and_the_refusal_is_in_the_trail(
    app: Flask, client: ApiClient, tenant: str, scopes: set[Scope]
) -> None:
    key = key_of(app, tenant, frozenset(scopes))

    response = client.get(AUDIT, headers=bearer(key))

    assert response.status_code == 403
    (event,) = trail(client)
    assert (event["key_id"], event["route"], event["status"]) == (parse_key(key)[0], AUDIT, 403)


def test_a_trail_that_cannot_be_written_costs_a_warning_not_the_request(
    app: Flask,
    client: ApiClient,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(event: object) -> None:
        raise RecordUnavailable("the record (database) is unavailable; try again shortly")

    monkeypatch.setattr(app.extensions["mesh"].audit, "append", refuse)
    caplog.set_level(logging.WARNING)
    with capture_logs() as logs:
        response = client.post(NETWORKS, json={"name": "still made"})

    assert response.status_code == 201
    # Once an app configured logging (structlog caches its loggers), the event reaches the
    # standard logging handlers or the output instead of capture_logs.
    written = repr(logs) + "".join(capfd.readouterr()) + caplog.text
    assert "audit.not_recorded" in written
    assert "'route': '/api/mesh/networks'" in written or '"route": "/api/mesh/networks"' in written


def test_reads_that_succeed_are_not_recorded(client: ApiClient) -> None:
    assert client.get(NETWORKS).status_code == 200
    assert client.get(f"{API}/keys").status_code == 200

    assert trail(client) == []


@pytest.fixture
def anonymous_client(app: Flask, error_schema: dict[str, Any]) -> ApiClient:
    client = app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    return client.use_key(None)
