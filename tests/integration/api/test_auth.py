"""Every operation of the served OpenAPI document refuses a caller it must refuse, and changes
nothing when it does.

The matrix takes the operations from the document itself, so an endpoint added later is in it
at once. Each path parameter is the id of a real resource of tenant A; each request carries
the body the docs UI would send (the operation's example), so only the key stands between the
request and a change to A's record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from meshapi.app import create_app
from meshcore.domain.keys import ALL_SCOPES, Scope, format_key, new_key, parse_key
from meshcore.settings import Settings
from tests.integration.api.client import API, NETWORKS, ApiClient, bearer, check_error_body
from tests.integration.api.conftest import SESSION_TENANTS
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration

METHODS = ("get", "put", "post", "patch", "delete")
ADMIN_PATHS = (f"{API}/keys", f"{API}/tenant", f"{API}/audit")
READ, WRITE, ADMIN = Scope.READ, Scope.WRITE, Scope.ADMIN
# For each scope an operation needs, a key with every other scope but that one.
LACKING = {
    READ: frozenset({WRITE, ADMIN}),
    WRITE: frozenset({READ}),
    ADMIN: frozenset({READ, WRITE}),
}
# Headers that carry no usable key, given a valid key of A to spoil.
MALFORMED: list[Callable[[str], dict[str, str]]] = [
    lambda key: {"Authorization": "Bearer not-a-key"},
    lambda key: {"Authorization": "Bearer"},
    lambda key: {"Authorization": key},  # no scheme
    lambda key: {"Authorization": f"Basic {key}"},
    lambda key: {"Authorization": f"Bearer {key}x"},
    lambda key: {"Authorization": f"Bearer {key[:-1]}"},
    lambda key: {"X-Api-Key": key},  # the key, but not where Mesh reads it
]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as the document has it: /api/mesh/networks/{network_id}
    body: object  # the example the docs UI sends, or None

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def scope(self) -> Scope:
        """The scope the issue gives this operation."""
        if self.path.startswith(ADMIN_PATHS):
            return ADMIN
        return READ if self.method == "get" else WRITE

    def send(self, client: ApiClient, ids: dict[str, str], headers: dict[str, str]) -> TestResponse:
        kwargs: dict[str, Any] = {"headers": headers}
        if self.body is not None:
            kwargs["json"] = self.body
        return client.open(self.path.format(**ids), method=self.method.upper(), **kwargs)


@dataclass(frozen=True)
class TenantA:
    """Tenant A's resources: the ids the matrix aims at, and text no refusal may show."""

    tenant: str
    ids: dict[str, str]
    canary: str
    key: str  # a valid key of A with every scope


def operations_of(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        if not path.startswith(f"{API}/"):
            continue
        for method in METHODS:
            if method in item:
                content = item[method].get("requestBody", {}).get("content", {})
                body = content.get("application/json", {}).get("example")
                found.append(Operation(method, path, body))
    return found


@pytest.fixture
def document(client: ApiClient) -> dict[str, Any]:
    return client.get(f"{API}/openapi.json").get_json()


@pytest.fixture
def operations(document: dict[str, Any]) -> list[Operation]:
    found = operations_of(document)
    # Not vacuous: at least the seed's operations and the keys'.
    assert {o.name for o in found} >= {
        f"POST {NETWORKS}",
        f"DELETE {NETWORKS}/{{network_id}}",
        f"POST {NETWORKS}/{{network_id}}/tasks/{{task_id}}/process",
        f"DELETE {NETWORKS}/{{network_id}}/agents/{{agent_id}}",
        f"POST {API}/keys",
        f"DELETE {API}/keys/{{key_id}}",
    }
    return found


@pytest.fixture
def anonymous(app: Flask, error_schema: dict[str, Any]) -> ApiClient:
    """A client that sends no key but the headers each request names."""
    client = app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    return client.use_key(None)


@pytest.fixture
def tenant_b(engine: sa.Engine, redis_client: redis.Redis) -> Iterator[str]:
    tenant = f"{SESSION_TENANTS}b-{uuid4().hex[:8]}"
    yield tenant
    Record(engine, redis_client, tenant).purge()


@pytest.fixture
def tenant_a(client: ApiClient, app: Flask, tenant: str, api_key: str) -> TenantA:
    """A network, an agent, a task (held, then cancelled and rated), a memory item and a key
    of A, each with the canary."""
    canary = f"canary-{uuid4().hex}"
    network = client.post(
        NETWORKS, json={"name": f"net {canary}", "description": f"about {canary}"}
    ).get_json()
    agent = client.post(
        f"{NETWORKS}/{network['id']}/agents", json={"type": "design", "name": f"agent {canary}"}
    ).get_json()
    task = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": f"task {canary}", "context": {"c": canary}, "auto_process": False},
    ).get_json()
    memory = client.post(
        f"{NETWORKS}/{network['id']}/memory", json={"type": "fact", "content": f"fact {canary}"}
    )
    assert memory.status_code == 201, memory.get_data(as_text=True)
    # Ended (cancelled) and rated, so that its rating is there to read.
    task_url = f"{NETWORKS}/{network['id']}/tasks/{task['id']}"
    assert client.post(f"{task_url}/cancel").status_code == 202
    rating = client.post(f"{task_url}/rating", json={"score": 4, "comment": f"rated {canary}"})
    assert rating.status_code == 201, rating.get_data(as_text=True)
    key, _text = app.extensions["mesh"].keys.create(
        tenant_id=tenant, scopes={READ}, name=f"key {canary}"
    )
    kind = client.post(
        f"{API}/agent-types",
        json={"name": f"t-{uuid4().hex[:8]}", "description": f"does {canary}", "role": canary},
    )
    assert kind.status_code == 201, kind.get_data(as_text=True)
    ids = {"network_id": network["id"], "agent_id": agent["id"], "task_id": task["id"]}
    ids["item_id"] = memory.get_json()["id"]
    ids |= {"name": kind.get_json()["name"], "version": "1"}
    return TenantA(tenant, {**ids, "key_id": key.id}, canary, api_key)


def key_of(app: Flask, tenant: str, scopes: frozenset[Scope] = ALL_SCOPES) -> str:
    _key, text = app.extensions["mesh"].keys.create(tenant_id=tenant, scopes=scopes)
    return text


def missing_ids() -> dict[str, str]:
    """Ids of the same kinds that nothing has."""
    return {
        "network_id": str(uuid4()),
        "agent_id": str(uuid4()),
        "task_id": str(uuid4()),
        "item_id": str(uuid4()),
        "key_id": new_key()[0],
        "name": f"t-{uuid4().hex[:8]}",
        "version": "1",
    }


class Matrix:
    """Sends each refused request and notes every way its answer is wrong."""

    def __init__(self, anonymous: ApiClient, record: Record, a: TenantA) -> None:
        self.client, self.record, self.a = anonymous, record, a
        self.problems: list[str] = []

    def refuse(
        self, operation: Operation, headers: dict[str, str], status: int, case: str
    ) -> TestResponse:
        missing = [p for p in operation.params if p not in self.a.ids]
        assert not missing, f"{operation.name}: give the matrix a real resource for {missing}"
        before = self.record.snapshot()
        response = operation.send(self.client, self.a.ids, headers)
        where = f"{case}: {operation.name}"
        text = response.get_data(as_text=True)
        if response.status_code != status:
            self.problems.append(f"{where} answered {response.status_code}, not {status}: {text}")
        if status == 401 and not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
            self.problems.append(f"{where} has no WWW-Authenticate: Bearer")
        if self.a.canary in text or self.a.tenant in text:
            self.problems.append(f"{where} shows tenant A's data: {text}")
        if self.record.snapshot() != before:
            self.problems.append(f"{where} changed tenant A's record")
        return response

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def matrix(anonymous: ApiClient, record: Record, tenant_a: TenantA) -> Matrix:
    return Matrix(anonymous, record, tenant_a)


def test_every_operation_without_a_key_is_401_with_a_bearer_challenge(
    matrix: Matrix, operations: list[Operation]
) -> None:
    for operation in operations:
        matrix.refuse(operation, {}, 401, "no key")
    matrix.check()


def test_every_operation_with_a_malformed_key_is_401(
    matrix: Matrix, operations: list[Operation], tenant_a: TenantA
) -> None:
    for operation in operations:
        for number, spoil in enumerate(MALFORMED):
            matrix.refuse(operation, spoil(tenant_a.key), 401, f"malformed key #{number}")
    matrix.check()


def test_every_operation_with_an_unknown_or_revoked_key_is_401(
    matrix: Matrix, operations: list[Operation], app: Flask, tenant_a: TenantA
) -> None:
    revoked = key_of(app, tenant_a.tenant)
    app.extensions["mesh"].keys.revoke(parse_key(revoked)[0], tenant_id=tenant_a.tenant)
    unknown = format_key(*new_key())

    for operation in operations:
        matrix.refuse(operation, bearer(revoked), 401, "revoked key")
        matrix.refuse(operation, bearer(unknown), 401, "unknown key")
    matrix.check()


def test_every_operation_with_a_key_lacking_its_scope_is_403(
    matrix: Matrix, operations: list[Operation], app: Flask, tenant_a: TenantA
) -> None:
    lacking = {scope: key_of(app, tenant_a.tenant, scopes) for scope, scopes in LACKING.items()}

    for operation in operations:
        response = matrix.refuse(
            operation, bearer(lacking[operation.scope]), 403, f"no {operation.scope} scope"
        )
        assert operation.scope in response.get_json()["message"], response.get_json()
    matrix.check()


def test_another_tenants_key_gets_404_for_tenant_as_ids_as_for_ids_that_do_not_exist(
    matrix: Matrix, operations: list[Operation], app: Flask, tenant_a: TenantA, tenant_b: str
) -> None:
    b = bearer(key_of(app, tenant_b))
    missing = missing_ids()
    aimed = [o for o in operations if o.params]
    assert len(aimed) >= 10

    for operation in aimed:
        foreign = matrix.refuse(operation, b, 404, "tenant B's key")
        absent = operation.send(matrix.client, missing, b)
        shown = foreign.get_data(as_text=True)
        expected = absent.get_data(as_text=True)
        for name in operation.params:
            shown = shown.replace(tenant_a.ids[name], f"<{name}>")
            expected = expected.replace(missing[name], f"<{name}>")
        if (foreign.status_code, shown) != (absent.status_code, expected):
            matrix.problems.append(f"{operation.name}: A's id {shown} but a missing id {expected}")
    matrix.check()


def test_a_valid_key_of_a_reads_every_get_operation(
    client: ApiClient, operations: list[Operation], tenant_a: TenantA
) -> None:
    for operation in operations:
        if operation.method == "get":
            response = operation.send(client, tenant_a.ids, {})
            assert 200 <= response.status_code < 300, (operation.name, response.get_json())


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/openapi.json",
        f"{API}/docs",
        f"{API}/docs/assets/swagger-ui.css",
        "/healthz",
        "/readyz",
        "/metrics",
    ],
)
def test_the_document_the_docs_ui_probes_and_metrics_need_no_key(
    anonymous: ApiClient, path: str
) -> None:
    assert anonymous.get(path).status_code == 200


def test_a_revocation_reaches_another_api_process_within_5_seconds(
    app: Flask, client: ApiClient, settings: Settings, tenant: str, error_schema: dict[str, Any]
) -> None:
    key = key_of(app, tenant, frozenset({READ}))
    elsewhere = create_app(settings)
    try:
        other = elsewhere.test_client()
        other.error_schema = error_schema  # type: ignore[attr-defined]
        assert other.get(NETWORKS, headers=bearer(key)).status_code == 200  # now in its cache

        assert client.delete(f"{API}/keys/{parse_key(key)[0]}").status_code == 204
        revoked_at = time.monotonic()
        assert client.get(NETWORKS, headers=bearer(key)).status_code == 401
        while (response := other.get(NETWORKS, headers=bearer(key))).status_code == 200:
            assert time.monotonic() - revoked_at < 5, "the other process still takes the key"
            time.sleep(0.1)
    finally:
        elsewhere.extensions["mesh"].close()

    assert response.status_code == 401
    assert "revoked" in check_error_body(response, error_schema)["message"]
