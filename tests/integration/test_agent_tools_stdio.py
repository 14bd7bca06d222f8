"""A specialist calling a stdio MCP server for real: the MCP test server run by the worker's
MCP client as a program of its own, the record on Postgres, the offline model through the
gateway, one step run by the StepRunner.

The program runs only when the worker's allow-list (MESH_MCP_STDIO_COMMANDS) names it, and
with none of the worker's environment: the step's refusal and the server's own ledger show it.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import uuid4

import pytest
import redis

from meshcore.adapters.mcp_tools import McpTools, ToolUnavailable
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.agent_types import ToolServer
from meshcore.domain.task import StepStatus
from meshcore.ports import ToolCallStatus
from meshcore.services.agent_steps import StepRunner
from tests.integration.agent_tool_runs import SUBTASK, planned, run, step_runner
from tests.integration.agent_tool_runs import client as client
from tests.integration.agent_tool_runs import engine as engine
from tests.integration.agent_tool_runs import uow as uow
from tests.mcp_fixtures import StdioTestServer, stdio_server

pytestmark = pytest.mark.integration

TENANT = f"stdio-test-{uuid4().hex[:8]}"
REDIS_DB = 5
# A worker's secret, in the environment of the process that runs the MCP client.
CANARY = f"canary-{uuid4().hex}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> StdioTestServer:
    return stdio_server(Path(tmp_path_factory.mktemp("stdio-mcp")))


def runner(uow: SqlUnitOfWorkFactory, client: redis.Redis, allowed: tuple[str, ...]) -> StepRunner:
    """A worker's step runner whose MCP client may run the programs `allowed`."""
    # A Python server starts in about a second a session; a loaded box may need more.
    return step_runner(TENANT, uow, client, McpTools(timeout=20, stdio_commands=allowed))


def test_a_step_calls_a_stdio_tool_once_and_quotes_it_and_the_server_gets_no_secrets(
    server: StdioTestServer,
    uow: SqlUnitOfWorkFactory,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.reset()
    monkeypatch.setenv("MESH_DATA_KEYS", CANARY)
    task = planned(uow, TENANT, ToolServer("kb", command=server.command, tools=("lookup",)))

    step = run(runner(uow, client, (server.program,)), task)

    assert step.status is StepStatus.COMPLETED, step.error
    assert f"Tool kb__lookup said: fact about {SUBTASK}: 42 sources agree" in step.output
    assert server.calls()["calls"] == [{"tool": "lookup", "arguments": {"query": SUBTASK}}]
    with uow(TENANT) as work:
        [call] = work.tool_calls.for_step(task.id, 1, "facts")
    assert call.status is ToolCallStatus.DONE
    # A process for the listing, another for the call: neither saw the worker's environment.
    environments = server.environments()
    assert len(environments) == 2
    for names in environments:
        assert not [name for name in names if name.startswith("MESH_")], names
    assert {e["cwd"] for e in server.events() if "cwd" in e} == {"/"}
    print(f"\nstdio tool step: {step.latency_ms:.0f} ms, its call {call.latency_ms:.0f} ms")


@pytest.mark.parametrize("allowed", [(), ("/opt/mcp/other",)], ids=["none", "another"])
def test_a_program_the_worker_does_not_allow_fails_the_step_and_never_runs(
    server: StdioTestServer,
    uow: SqlUnitOfWorkFactory,
    client: redis.Redis,
    allowed: tuple[str, ...],
) -> None:
    # Saved when the program was allowed; the operator has taken it off the list since.
    server.reset()
    task = planned(uow, TENANT, ToolServer("kb", command=server.command, tools=("lookup",)))

    step = run(runner(uow, client, allowed), task)

    assert step.status is StepStatus.FAILED
    assert step.error is not None
    assert f"the tools of kb could not be listed: MCP server {server.program}" in step.error
    assert "MESH_MCP_STDIO_COMMANDS" in step.error
    assert server.events() == []  # not started at all


def test_a_listing_over_stdio_reads_the_tools_hints_and_names_the_program(
    server: StdioTestServer,
) -> None:
    server.reset()
    tools = McpTools(timeout=20, stdio_commands=(server.program,))

    listed = {info.name: info for info in tools.list_tools(server.command)}

    assert {name: info.idempotent for name, info in listed.items()} == {
        "lookup": True, "send_email": False, "fail": False,
    }  # fmt: skip
    assert {info.server for info in listed.values()} == {server.program}


def test_a_server_that_dies_is_unavailable_saying_what_it_wrote_to_stderr(
    server: StdioTestServer,
) -> None:
    server.reset()
    tools = McpTools(timeout=20, stdio_commands=(server.program,))

    with pytest.raises(ToolUnavailable) as failed:
        tools.call_tool((*server.command, "--no-such-option"), "lookup", {"query": "x"})

    assert failed.value.server == server.program
    assert "unrecognized arguments: --no-such-option" in failed.value.cause
    assert failed.value.may_have_run is False
    assert server.count("lookup") == 0


def test_a_call_past_the_timeout_is_unavailable_and_may_have_run(
    server: StdioTestServer,
) -> None:
    server.reset()
    # Long enough for the interpreter to start (a second or two), short of the tool's delay.
    tools = McpTools(timeout=8, stdio_commands=(server.program,))
    started = time.monotonic()

    with pytest.raises(ToolUnavailable, match="no answer within the timeout") as failed:
        tools.call_tool((*server.command, "--delay-ms", "30000"), "lookup", {"query": "x"})

    assert failed.value.may_have_run is True
    assert server.count("lookup") == 1  # it did reach the tool
    # The timeout, and the SDK's bounded stop of the process (stdin closed, then signals).
    assert time.monotonic() - started < 8 + 7
