"""A type's stdio MCP servers, on the fakes: saved only when the operator allows the program."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from meshcore.domain.agent_types import AgentTypeDef, ToolServer
from meshcore.domain.errors import InvalidInput
from meshcore.services.agent_types import AgentTypeService
from tests.fakes import FakeMesh

PROGRAM = "/usr/local/bin/kb-mcp"


def scout(*servers: ToolServer) -> AgentTypeDef:
    return AgentTypeDef(
        name="scout",
        description="Finds facts with its tools.",
        role="You are the research scout of a marketing team.",
        tools=servers,
    )


def stdio(program: str = PROGRAM) -> ToolServer:
    return ToolServer("kb", command=(program, "--db", "/srv/kb"), tools=("lookup",))


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build()


def catalog(mesh: FakeMesh, allowed: Collection[str]) -> AgentTypeService:
    return AgentTypeService(
        tenant_id=mesh.tenant_id, uow=mesh.uow, clock=mesh.clock, stdio_commands=allowed
    )


def test_a_command_the_operator_allows_is_saved_and_read_back(mesh: FakeMesh) -> None:
    types = catalog(mesh, [PROGRAM])

    types.create(scout(stdio()))

    [server] = types.get("scout").tools
    assert server.command == (PROGRAM, "--db", "/srv/kb")
    assert (server.url, server.endpoint) == ("", server.command)


def test_by_default_no_command_is_allowed(mesh: FakeMesh) -> None:
    with pytest.raises(InvalidInput, match="stdio MCP servers are off") as refused:
        mesh.agent_types.create(scout(stdio()))

    assert refused.value.field == "tools.0.command"


def test_a_program_not_on_the_list_is_refused_naming_the_server_and_nothing_is_saved(
    mesh: FakeMesh,
) -> None:
    types = catalog(mesh, [PROGRAM])
    web = ToolServer("web", "https://93.184.216.34/mcp")

    with pytest.raises(InvalidInput, match="/bin/sh is not a program") as refused:
        types.create(scout(web, stdio("/bin/sh")))

    assert refused.value.field == "tools.1.command"
    assert [t.name for t in types.list() if t.name == "scout"] == []


def test_a_change_is_checked_against_the_list_as_it_is_now(mesh: FakeMesh) -> None:
    catalog(mesh, [PROGRAM]).create(scout(stdio()))
    narrowed = catalog(mesh, ["/opt/mcp/search"])

    with pytest.raises(InvalidInput) as refused:
        narrowed.change(scout(stdio()))

    assert refused.value.field == "tools.0.command"
    assert narrowed.get("scout").version == 1
