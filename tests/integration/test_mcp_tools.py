"""McpTools against a real MCP server (the SDK's own, over streamable HTTP) in a subprocess."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from meshcore.adapters.mcp_tools import (
    McpTools,
    ToolInfo,
    ToolResult,
    ToolUnavailable,
    redact_url,
)
from meshcore.domain.errors import MeshError
from tests.mcp_fixtures import McpTestServer, free_port, mcp_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[McpTestServer]:
    with mcp_server() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(server: McpTestServer) -> None:
    server.set_delay(0)
    server.reset()


@pytest.fixture
def tools() -> McpTools:
    return McpTools(timeout=5, headers={"Authorization": "Bearer tests-only-token"})


def by_name(infos: list[ToolInfo]) -> dict[str, ToolInfo]:
    return {info.name: info for info in infos}


def test_list_tools_gives_the_three_tools_with_their_hints_and_schemas(
    server: McpTestServer, tools: McpTools
) -> None:
    listed = by_name(tools.list_tools(server.url))

    assert set(listed) == {"lookup", "send_email", "fail"}
    assert listed["lookup"].idempotent is True
    assert listed["send_email"].idempotent is False
    assert listed["fail"].idempotent is False  # no annotations at all
    assert listed["lookup"].input_schema["required"] == ["query"]
    assert listed["lookup"].input_schema["properties"]["query"]["type"] == "string"
    assert sorted(listed["send_email"].input_schema["required"]) == ["subject", "to"]
    assert listed["lookup"].description == "Look up a fact about the query."
    assert listed["lookup"].server == server.url


def test_a_call_returns_the_tools_text_and_reaches_the_server_once(
    server: McpTestServer, tools: McpTools
) -> None:
    result = tools.call_tool(server.url, "lookup", {"query": "otters"})

    assert result.text == "fact about otters: 42 sources agree"
    assert result.is_error is False
    assert 0 < result.latency_ms < 5000
    seen = server.calls()
    assert seen["counts"] == {"lookup": 1}
    assert seen["calls"] == [{"tool": "lookup", "arguments": {"query": "otters"}}]
    # One session, one call: no tools/list behind the caller's back.
    assert seen["methods"].get("tools/call") == 1
    assert seen["methods"].get("tools/list", 0) == 0
    assert seen["methods"].get("initialize") == 1
    # The default headers went with every message of the session.
    assert set(seen["authorizations"]) == {"Bearer tests-only-token"}


def test_a_tool_that_fails_gives_an_error_result_not_an_exception(
    server: McpTestServer, tools: McpTools
) -> None:
    result = tools.call_tool(server.url, "fail", {"reason": "the archive is closed"})

    assert result.is_error is True
    assert "the archive is closed" in result.text
    assert server.count("fail") == 1


def test_an_unknown_tool_gives_an_error_result(server: McpTestServer, tools: McpTools) -> None:
    result = tools.call_tool(server.url, "no_such_tool", {})

    assert result.is_error is True
    assert "no_such_tool" in result.text


def test_a_closed_port_raises_tool_unavailable_naming_the_server_without_secrets() -> None:
    port = free_port()
    url = f"http://user:hunter2@127.0.0.1:{port}/mcp?token=s3cr3t"
    tools = McpTools(timeout=3)

    started = time.monotonic()
    with pytest.raises(ToolUnavailable) as raised:
        tools.call_tool(url, "lookup", {"query": "x"})

    assert time.monotonic() - started < 3
    error = raised.value
    assert isinstance(error, MeshError)
    assert error.server == f"http://127.0.0.1:{port}/mcp"
    assert error.server in str(error)
    assert "hunter2" not in str(error) and "s3cr3t" not in str(error)
    assert "ConnectError" in str(error)
    assert error.may_have_run is False


def test_a_slow_tool_times_out_and_says_the_call_may_have_run(server: McpTestServer) -> None:
    server.set_delay(1500)
    tools = McpTools(timeout=0.5)

    started = time.monotonic()
    with pytest.raises(ToolUnavailable) as raised:
        tools.call_tool(server.url, "send_email", {"to": "a@example.com", "subject": "hi"})

    assert time.monotonic() - started < 2
    assert "timeout" in str(raised.value)
    assert raised.value.may_have_run is True
    assert server.count("send_email") == 1  # it did reach the server: no blind retry


def test_the_listing_is_cached_for_its_ttl(server: McpTestServer) -> None:
    now = [1000.0]
    tools = McpTools(timeout=5, list_ttl=60, clock=lambda: now[0])

    first = tools.list_tools(server.url)
    now[0] += 59
    assert tools.list_tools(server.url) == first
    assert server.method_count("tools/list") == 1

    now[0] += 2
    tools.list_tools(server.url)
    assert server.method_count("tools/list") == 2


def test_other_credentials_get_a_listing_of_their_own(server: McpTestServer) -> None:
    tools = McpTools(timeout=5)

    tools.list_tools(server.url, headers={"Authorization": "Bearer one"})
    tools.list_tools(server.url, headers={"Authorization": "Bearer one"})
    tools.list_tools(server.url, headers={"Authorization": "Bearer two"})

    assert server.method_count("tools/list") == 2
    assert set(server.calls()["authorizations"]) == {"Bearer one", "Bearer two"}


def test_calls_from_many_threads_each_reach_the_server_once(server: McpTestServer) -> None:
    # Like a Celery thread pool: each call runs its own event loop in its own thread.
    tools = McpTools(timeout=5)
    queries = [f"q{i}" for i in range(8)]

    def look_up(query: str) -> ToolResult:
        return tools.call_tool(server.url, "lookup", {"query": query})

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(look_up, queries))

    assert [r.text for r in results] == [f"fact about {q}: 42 sources agree" for q in queries]
    assert server.count("lookup") == len(queries)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@tools.example.com/mcp?key=k#f", "https://tools.example.com/mcp"),
        ("http://[::1]:8931/mcp?token=t", "http://[::1]:8931/mcp"),
        ("http://127.0.0.1:8931/mcp", "http://127.0.0.1:8931/mcp"),
    ],
)
def test_a_server_is_named_without_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown
