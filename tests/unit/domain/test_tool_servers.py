"""An agent type's MCP servers: a URL or a stdio command, and which commands may run."""

from __future__ import annotations

import pytest

from meshcore.domain.agent_types import MAX_COMMAND_PARTS, ToolServer, command_refusal
from meshcore.domain.errors import InvalidInput

PROGRAM = "/usr/local/bin/kb-mcp"


def test_a_server_is_a_url_or_a_command_and_its_endpoint_says_which() -> None:
    assert ToolServer("kb", "https://kb.example/mcp").endpoint == "https://kb.example/mcp"
    assert ToolServer("kb", command=(PROGRAM, "--db", "x")).endpoint == (PROGRAM, "--db", "x")


@pytest.mark.parametrize(
    ("url", "command"),
    [("", ()), ("https://kb.example/mcp", (PROGRAM,))],
    ids=["neither", "both"],
)
def test_a_server_with_neither_or_both_is_refused(url: str, command: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput, match=r"url .* or a command") as refused:
        ToolServer("kb", url, command=command)
    assert refused.value.field == "tools.url"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (("kb-mcp",), "absolute path"),  # found on PATH: not the program allowed
        (("./kb-mcp",), "absolute path"),
        (("",), "absolute path"),
        ((PROGRAM, "a\0b"), "no NUL"),
        ((PROGRAM, "x" * 4097), "at most 4096"),
        ((PROGRAM, *["x"] * MAX_COMMAND_PARTS), f"at most {MAX_COMMAND_PARTS} parts"),
    ],
    ids=["bare-name", "relative", "empty", "nul", "long-part", "too-many"],
)
def test_a_command_that_is_not_a_plain_program_and_arguments_is_refused(
    command: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem) as refused:
        ToolServer("kb", command=command)
    assert refused.value.field == "tools.command"


def test_a_command_server_takes_no_headers() -> None:
    with pytest.raises(InvalidInput, match="only a server with a url") as refused:
        ToolServer("kb", command=(PROGRAM,), headers=(("Authorization", "Bearer x"),))
    assert refused.value.field == "tools.headers"


def test_an_empty_argument_is_an_argument() -> None:
    assert ToolServer("kb", command=(PROGRAM, "--prefix", "")).command[-1] == ""


def test_only_a_program_the_operator_listed_exactly_may_run() -> None:
    allowed = {PROGRAM, "/opt/mcp/search"}

    assert command_refusal((PROGRAM, "--anything"), allowed) is None
    assert command_refusal(("/opt/mcp/search",), allowed) is None
    for other in ("/bin/sh", "/usr/local/bin/../bin/kb-mcp", "/usr/local/bin//kb-mcp"):
        assert command_refusal((other,), allowed) == (
            f"{other} is not a program MESH_MCP_STDIO_COMMANDS allows"
        )


def test_with_no_program_listed_stdio_is_off() -> None:
    refused = command_refusal((PROGRAM,), ())

    assert refused is not None and "stdio MCP servers are off" in refused
