"""An agent type as the record keeps it: its tool servers, of both kinds, come back whole."""

from __future__ import annotations

from datetime import UTC, datetime

from meshcore.adapters.sql.agent_types import definition_from_json, definition_json
from meshcore.domain.agent_types import AgentTypeDef, ToolServer

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def scout(*servers: ToolServer) -> AgentTypeDef:
    return AgentTypeDef(
        name="scout",
        description="Finds facts with its tools.",
        role="You are the research scout of a marketing team.",
        tools=servers,
        version=3,
        created_at=NOW,
    )


def test_a_url_server_and_a_command_server_are_read_back_as_they_were_written() -> None:
    definition = scout(
        ToolServer("web", "https://kb.example/mcp", ("search",), headers=(("X-Key", "k"),)),
        ToolServer("kb", command=("/usr/local/bin/kb-mcp", "--db", ""), idempotent=("lookup",)),
    )

    read = definition_from_json(definition_json(definition), version=3, created_at=NOW)

    assert read == definition
    assert read.tools[1].endpoint == ("/usr/local/bin/kb-mcp", "--db", "")


def test_a_server_written_before_commands_existed_is_a_url_server() -> None:
    data = definition_json(scout(ToolServer("web", "https://kb.example/mcp")))
    for server in data["tools"]:  # type: ignore[attr-defined]
        del server["command"]

    [server] = definition_from_json(data, version=3, created_at=NOW).tools

    assert (server.url, server.command) == ("https://kb.example/mcp", ())
