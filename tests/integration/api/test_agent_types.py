"""The catalog of agent types over HTTP: versions, built-ins, refusals that change nothing."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa

from meshcore.agents import BUILTINS
from tests.integration.api.client import API, NETWORKS, ApiClient
from tests.integration.api.record import Record
from tests.integration.api.test_errors import rejected

pytestmark = pytest.mark.integration

TYPES = f"{API}/agent-types"
VERDICT = {
    "type": "object",
    "required": ["approved", "issues"],
    "properties": {
        "approved": {"type": "boolean"},
        "issues": {"type": "array", "items": {"type": "string"}},
    },
}


def legal(**changes: Any) -> dict[str, Any]:
    return {
        "name": "legal",
        "description": "Checks claims against advertising law.",
        "role": "You are the legal reviewer of a marketing team.",
        "capabilities": ["compliance"],
        "reads": ["fact", "decision"],
        "writes": "decision",
        "answer": VERDICT,
        **changes,
    }


def test_the_catalog_lists_the_built_in_types_beside_the_tenants_own(client: ApiClient) -> None:
    made = client.post(TYPES, json=legal())
    assert made.status_code == 201, made.get_json()

    listed = {t["name"]: t for t in client.get(TYPES).get_json()}

    assert set(listed) == {*BUILTINS, "legal"}
    assert listed["research"]["builtin"] and listed["research"]["queue"] == "agent.research"
    assert listed["legal"] == made.get_json()
    assert (listed["legal"]["version"], listed["legal"]["builtin"]) == (1, False)
    assert listed["legal"]["queue"] == "agent.general"
    assert listed["legal"]["answer"] == VERDICT
    assert listed["legal"]["answer_format"] == "json_schema"


def test_each_change_is_a_new_version_and_the_old_one_stays_readable(client: ApiClient) -> None:
    client.post(TYPES, json=legal())
    body = {k: v for k, v in legal(role="You are the strict legal reviewer.").items()}
    del body["name"]

    changed = client.put(f"{TYPES}/legal", json=body)

    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["version"] == 2
    assert client.get(f"{TYPES}/legal").get_json()["role"] == "You are the strict legal reviewer."
    first = client.get(f"{TYPES}/legal/versions/1").get_json()
    assert (first["version"], first["role"]) == (1, legal()["role"])
    assert client.get(f"{TYPES}/legal/versions/3").status_code == 404


def test_a_deleted_type_is_gone_and_its_name_can_be_taken_again(client: ApiClient) -> None:
    client.post(TYPES, json=legal())

    assert client.delete(f"{TYPES}/legal").status_code == 204
    assert client.get(f"{TYPES}/legal").status_code == 404
    again = client.post(TYPES, json=legal(description="Second try."))

    assert again.status_code == 201
    assert again.get_json()["version"] == 3  # after version 1 and its deletion
    assert client.get(f"{TYPES}/legal/versions/1").get_json()["description"] == (
        legal()["description"]
    )


def test_a_network_can_be_made_with_the_new_type_and_then_the_type_cannot_be_deleted(
    client: ApiClient, record: Record
) -> None:
    client.post(TYPES, json=legal(model={"temperature": 0.1, "max_tokens": 300}))
    team = [{"type": t} for t in ("coordinator", "critic", "research", "legal")]

    network = client.post(NETWORKS, json={"name": "with legal", "agents": team}).get_json()

    agent = next(a for a in network["agents"] if a["type"] == "legal")
    assert agent["queue"] == "agent.general"
    assert agent["capabilities"] == ["compliance"]
    assert (agent["model"]["temperature"], agent["model"]["max_tokens"]) == (0.1, 300)
    body = rejected(
        client, record, "DELETE", f"{TYPES}/legal", status=409, field=None, problem=network["id"]
    )
    assert "remove those agents first" in body["message"]


@pytest.mark.parametrize("name", ["research", "coordinator", "critic"])
def test_a_built_in_type_cannot_be_changed_deleted_or_shadowed(
    client: ApiClient, record: Record, name: str
) -> None:
    body = {k: v for k, v in legal().items() if k != "name"}
    for method, url, sent in (
        ("PUT", f"{TYPES}/{name}", body),
        ("DELETE", f"{TYPES}/{name}", None),
        ("POST", TYPES, legal(name=name)),
    ):
        found = rejected(
            client, record, method, url, status=409, field=None, problem="copy it", json=sent
        )
        assert "built-in" in found["message"]


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"name": "Legal"}, "name", "a-z"),
        ({"answer": {"type": "object", "properties": 3}}, "answer", "not a JSON Schema"),
        ({"answer": {"type": "string"}}, "answer", "JSON object"),
        ({"reads": ["rumour"]}, "reads.0", "Must be one of"),
        ({"queue": "agent.content"}, "queue", "agent.general"),
        ({"role": ""}, "role", "Length"),
        ({"tools": [{"name": "db", "url": "http://127.0.0.1:5432/"}]}, "tools.0.url", ""),
        ({"max_tool_calls": 0}, "max_tool_calls", "greater than or equal to 1"),
        ({"memory_tokens": -1}, "memory_tokens", "greater than or equal to 0"),
        ({"memory_tokens": 100_001}, "memory_tokens", "less than or equal to 100000"),
    ],
    ids=["name", "schema", "not-object", "reads", "queue", "role", "tool-url", "tool-calls",
         "memory-tokens-negative", "memory-tokens-too-many"],
)
def test_a_bad_type_is_a_422_naming_the_field(
    client: ApiClient, record: Record, changes: dict[str, Any], field: str, problem: str
) -> None:
    rejected(
        client, record, "POST", TYPES, status=422, field=field, problem=problem,
        json=legal(**changes),
    )  # fmt: skip


def test_the_same_name_twice_is_a_409(client: ApiClient, record: Record) -> None:
    client.post(TYPES, json=legal())

    rejected(client, record, "POST", TYPES, status=409, field=None, problem="PUT", json=legal())


def test_a_built_in_type_is_edited_by_copying_it_to_a_new_name(client: ApiClient) -> None:
    copied = client.post(
        TYPES, json={"name": "my-research", "copy_of": "research", "capabilities": ["pricing"]}
    )

    assert copied.status_code == 201, copied.get_json()
    made, research = copied.get_json(), client.get(f"{TYPES}/research").get_json()
    assert (made["role"], made["reads"], made["writes"]) == (
        research["role"], research["reads"], research["writes"]
    )  # fmt: skip
    assert made["capabilities"] == ["pricing"]
    assert (made["builtin"], made["version"], made["queue"]) == (False, 1, "agent.general")


def test_a_copy_of_nothing_and_a_type_without_a_role_are_422s(
    client: ApiClient, record: Record
) -> None:
    rejected(
        client, record, "POST", TYPES, status=422, field="copy_of", problem="no agent type",
        json={"name": "x-copy", "copy_of": "nothing"},
    )  # fmt: skip
    rejected(
        client, record, "POST", TYPES, status=422, field="role", problem="Missing data",
        json={"name": "no-role", "description": "Has no role."},
    )  # fmt: skip


def test_a_tool_servers_credentials_are_taken_and_never_shown_back(
    client: ApiClient, engine: sa.Engine, tenant: str
) -> None:
    secret = f"canary-{uuid4().hex}"
    tools = [{"name": "kb", "url": "https://93.184.216.34/mcp", "tools": ["lookup"],
              "headers": {"Authorization": f"Bearer {secret}"}}]  # fmt: skip

    made = client.post(TYPES, json=legal(tools=tools))
    shown = client.get(f"{TYPES}/legal")

    assert made.status_code == 201, made.get_json()
    for response in (made, shown):
        assert secret not in response.get_data(as_text=True)
        assert response.get_json()["tools"][0]["header_names"] == ["Authorization"]
    with engine.connect() as db:
        rows = db.execute(
            sa.text("SELECT definition::text FROM agent_types WHERE tenant_id = :t"),
            {"t": tenant},
        ).scalars()
        assert all(secret not in row for row in rows)


def test_a_header_that_could_split_a_request_is_a_422(client: ApiClient, record: Record) -> None:
    tools = [{"name": "kb", "url": "https://93.184.216.34/mcp",
              "headers": {"Authorization": "Bearer x\r\nX-Evil: 1"}}]  # fmt: skip

    rejected(
        client, record, "POST", TYPES, status=422, field="tools.headers",
        problem="not a header value", json=legal(tools=tools),
    )  # fmt: skip


def test_a_types_memory_budget_is_kept_and_defaults_to_the_setting(client: ApiClient) -> None:
    made = client.post(TYPES, json=legal(memory_tokens=500))
    assert made.status_code == 201, made.get_json()

    assert made.get_json()["memory_tokens"] == 500
    assert client.get(f"{TYPES}/legal").get_json()["memory_tokens"] == 500
    changed = client.put(f"{TYPES}/legal", json={k: v for k, v in legal().items() if k != "name"})
    assert changed.get_json()["memory_tokens"] is None  # MESH_MEMORY_TOKEN_BUDGET
