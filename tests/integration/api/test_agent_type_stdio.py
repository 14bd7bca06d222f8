"""A type's stdio MCP servers over HTTP: a `command` is taken only when the operator's
MESH_MCP_STDIO_COMMANDS lists its program, and a refusal is a 422 naming the server."""

from __future__ import annotations

from typing import Any

import pytest

from meshcore.settings import Settings
from tests.integration.api.client import API, ApiClient
from tests.integration.api.private_api import settings_on
from tests.integration.api.record import Record
from tests.integration.api.test_errors import rejected

pytestmark = pytest.mark.integration

TYPES = f"{API}/agent-types"
PROGRAM = "/usr/local/bin/kb-mcp"


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, tenant: str) -> Settings:
    return settings_on(
        database_url, redis_url, tenant,
        mcp_stdio_commands=(PROGRAM,),
    )  # fmt: skip


def scout(*servers: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "scout",
        "description": "Finds facts with its tools.",
        "role": "You are the research scout of a marketing team.",
        "tools": list(servers),
    }


def test_an_allowed_command_is_taken_and_shown_back_without_a_url(client: ApiClient) -> None:
    server = {"name": "kb", "command": [PROGRAM, "--db", "/srv/kb"], "tools": ["lookup"]}

    made = client.post(TYPES, json=scout(server))

    assert made.status_code == 201, made.get_json()
    for shown in (made.get_json(), client.get(f"{TYPES}/scout").get_json()):
        [tool] = shown["tools"]
        assert tool["command"] == [PROGRAM, "--db", "/srv/kb"]
        assert "url" not in tool and tool["header_names"] == []


@pytest.mark.parametrize(
    ("server", "field", "problem"),
    [
        ({"command": ["/bin/sh", "-c", "id"]}, "tools.1.command", "MESH_MCP_STDIO_COMMANDS"),
        ({"command": ["kb-mcp"]}, "tools.command", "absolute path"),
        ({"command": []}, "tools.1.command", "Length"),
        ({}, "tools.1.url", "a url (streamable HTTP) or a command (stdio)"),
        (
            {"url": "https://93.184.216.34/mcp", "command": [PROGRAM]},
            "tools.1.url",
            "a url (streamable HTTP) or a command (stdio)",
        ),
        (
            {"command": [PROGRAM], "headers": {"Authorization": "Bearer x"}},
            "tools.headers",
            "only a server with a url",
        ),
    ],
    ids=["not-allowed", "bare-name", "empty", "neither", "both", "headers"],
)
def test_a_bad_command_server_is_a_422_naming_the_field(
    client: ApiClient, record: Record, server: dict[str, Any], field: str, problem: str
) -> None:
    # The second server is the bad one: the field names it.
    web = {"name": "web", "url": "https://93.184.216.34/mcp"}
    rejected(
        client, record, "POST", TYPES, status=422, field=field, problem=problem,
        json=scout(web, {"name": "kb", **server}),
    )  # fmt: skip


def test_a_change_to_a_command_not_allowed_is_refused_and_the_type_stays(
    client: ApiClient, record: Record
) -> None:
    made = client.post(TYPES, json=scout({"name": "web", "url": "https://93.184.216.34/mcp"}))
    assert made.status_code == 201, made.get_json()
    body = {k: v for k, v in scout({"name": "kb", "command": ["/usr/bin/python3"]}).items()}
    del body["name"]

    rejected(
        client, record, "PUT", f"{TYPES}/scout", status=422, field="tools.0.command",
        problem="MESH_MCP_STDIO_COMMANDS", json=body,
    )  # fmt: skip
