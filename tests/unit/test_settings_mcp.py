"""MESH_MCP_STDIO_COMMANDS: the programs stdio MCP servers may run, none unless listed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from meshcore.settings import Settings


def test_no_program_is_allowed_by_default() -> None:
    assert Settings().mcp_stdio_commands == ()


def test_the_environment_gives_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one setting read from the environment here: a list there is not JSON, and the
    # settings would refuse it as JSON were it not read as the operator writes it.
    monkeypatch.setenv("MESH_MCP_STDIO_COMMANDS", " /usr/local/bin/kb-mcp, /opt/mcp/search ,")

    assert Settings().mcp_stdio_commands == ("/usr/local/bin/kb-mcp", "/opt/mcp/search")


def test_an_empty_setting_allows_nothing() -> None:
    assert Settings(mcp_stdio_commands="").mcp_stdio_commands == ()


@pytest.mark.parametrize("path", ["kb-mcp", "./kb-mcp", "/usr/local/bin/../bin/kb-mcp", "/a//b"])
def test_a_program_that_is_not_a_normalised_absolute_path_is_refused(path: str) -> None:
    # A type names its program exactly as listed: such a path could never match, so it is
    # refused at start rather than refusing every type later.
    with pytest.raises(ValidationError, match="is not a normalised absolute path"):
        Settings(mcp_stdio_commands=path)
