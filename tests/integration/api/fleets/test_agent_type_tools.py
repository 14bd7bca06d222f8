"""A tenant's type with MCP tools, end to end: made over HTTP (its loopback URL allowed as a
webhook's would be, with MESH_WEBHOOK_ALLOW_PRIVATE), run by real workers, its step calling
the MCP test server once and its answer quoting what the tool said."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from meshcore.domain.agent_types import GENERAL_QUEUE
from tests.integration.api.client import API, NETWORKS, ApiClient
from tests.integration.api.private_api import BUILTIN_QUEUES
from tests.integration.fleet import WorkerSpec
from tests.mcp_fixtures import McpTestServer, mcp_server

pytestmark = pytest.mark.integration

TEAM = [{"type": t} for t in ("coordinator", "critic", "scout")]
WORKERS = [
    WorkerSpec("coordinator@tools", ["coordinator"], concurrency=4),
    WorkerSpec("agents@tools", [*BUILTIN_QUEUES, GENERAL_QUEUE], concurrency=4),
]
SETTINGS = {"webhook_allow_private": True}  # the MCP test server is on loopback


@pytest.fixture(scope="module")
def server() -> Iterator[McpTestServer]:
    with mcp_server() as running:
        yield running


def scout(url: str) -> dict[str, Any]:
    return {
        "name": "scout",
        "description": "Finds facts with its tools.",
        "role": "You are the research scout of a marketing team.",
        "tools": [{"name": "kb", "url": url, "tools": ["lookup"]}],
        "max_tool_calls": 2,
    }


def test_a_type_with_tools_calls_its_tool_once_and_quotes_it(
    client: ApiClient, server: McpTestServer
) -> None:
    server.reset()
    made = client.post(f"{API}/agent-types", json=scout(server.url))
    assert made.status_code == 201, made.get_data(as_text=True)
    network = client.post(NETWORKS, json={"name": "scouts", "agents": TEAM}).get_json()

    response = client.post(
        f"{NETWORKS}/{network['id']}/tasks",
        json={"description": "Write the launch email for Orbit"},
        query_string={"wait": 0},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    deadline = time.monotonic() + 120
    task = client.get(response.headers["Location"]).get_json()
    while task["status"] not in ("completed", "failed", "timed_out", "cancelled"):
        assert time.monotonic() < deadline, f"task still {task['status']}"
        time.sleep(0.3)
        task = client.get(response.headers["Location"]).get_json()

    assert task["status"] == "completed", task.get("error")
    [called] = [h for h in task["history"] if h["kind"] == "tool_call"]
    assert (called["detail"]["server"], called["detail"]["tool"]) == ("kb", "lookup")
    assert called["detail"]["outcome"] == "ok" and called["detail"]["subtask"] == "scout"
    [step] = [h for h in task["history"] if h["kind"] == "step" and h["agent"] == "scout"]
    assert "Tool kb__lookup said: fact about The scout angle on" in step["detail"]["excerpt"]
    assert server.count("lookup") == 1
