"""The catalog of agent types: what an agent of a type is told, reads, writes and answers.

Seven types are built in (every tenant has them, and none can change them); a tenant adds
its own. Each change to a tenant's type makes a new version, and a step records the version
it ran with, so a task's history still explains itself after the type is edited.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from meshcore.domain.errors import InvalidInput
from meshcore.domain.memory import MemoryType

COORDINATOR, CRITIC = "coordinator", "critic"
# The two roles with fixed answer shapes (a plan, a verdict): they take no subtasks.
ROLES = frozenset({COORDINATOR, CRITIC})
# Steps of a type nobody deployed a pool for: `mesh serve` and every deployment consume it.
GENERAL_QUEUE = "agent.general"
BUILTIN_VERSION = 1
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
MAX_ROLE, MAX_DESCRIPTION, MAX_CAPABILITIES = 8_000, 1_000, 16
MAX_HEADERS = 8
MAX_MEMORY_TOKENS = 100_000
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
MAX_COMMAND_PARTS, MAX_COMMAND_PART = 64, 4096

# Where an MCP server is: a streamable HTTP URL, or a command (program and arguments) whose
# process speaks MCP on its stdin and stdout.
McpEndpoint = str | tuple[str, ...]


def is_specialist(name: str) -> bool:
    return name not in ROLES


def own_queue(name: str) -> str:
    """The queue of a type's own worker pool."""
    return "coordinator" if name == COORDINATOR else f"agent.{name}"


@dataclass(frozen=True)
class ModelDefaults:
    """What an agent of the type calls unless the agent says otherwise."""

    chain: tuple[str, ...] | None = None  # None: the network's chain, else the settings'
    temperature: float = 0.3
    max_tokens: int = 1024

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise InvalidInput("model.temperature", "must be between 0 and 2")
        if not 1 <= self.max_tokens <= 32_768:
            raise InvalidInput("model.max_tokens", "must be between 1 and 32768")
        if self.chain is not None and not (1 <= len(self.chain) <= 8):
            raise InvalidInput("model.chain", "must name between 1 and 8 models")


@dataclass(frozen=True)
class ToolServer:
    """An MCP server a type's agents may call, and which of its tools (empty: all).

    The server is a `url` (streamable HTTP) or a `command` run on the worker (stdio), never
    both. A command runs only when the operator allows its program (command_refusal).
    """

    name: str
    url: str = ""
    tools: tuple[str, ...] = ()
    idempotent: tuple[str, ...] = ()  # tools to retry when in doubt, whatever they declare
    # Sent with every request to the server (its credentials): sealed in the record, never
    # shown back, kept out of reprs and logs.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # The program (an absolute path) and its arguments; the process gets a minimal
    # environment, none of the worker's. No `env` of the type's own: variables such as
    # LD_PRELOAD or NODE_OPTIONS would make any allowed program run what a tenant chose.
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.command):
            raise InvalidInput(
                "tools.url", "give either a url (streamable HTTP) or a command (stdio)"
            )
        if self.command:
            _check_command(self.command)
            if self.headers:
                raise InvalidInput("tools.headers", "only a server with a url takes headers")
        if len(self.headers) > MAX_HEADERS:
            raise InvalidInput("tools.headers", f"at most {MAX_HEADERS}")
        for name, value in self.headers:
            if not _HEADER_NAME.match(name):
                raise InvalidInput("tools.headers", f"{name!r} is not an HTTP header name")
            if any(c in value for c in "\r\n\0") or len(value) > 4096:
                raise InvalidInput("tools.headers", f"the value of {name} is not a header value")

    @property
    def endpoint(self) -> McpEndpoint:
        """What an MCP client connects to: the URL, or the command to run."""
        return self.command or self.url


def _check_command(command: tuple[str, ...]) -> None:
    if len(command) > MAX_COMMAND_PARTS:
        raise InvalidInput("tools.command", f"at most {MAX_COMMAND_PARTS} parts")
    if any(len(part) > MAX_COMMAND_PART or "\0" in part for part in command):
        raise InvalidInput(
            "tools.command", f"each part must be at most {MAX_COMMAND_PART} characters, no NUL"
        )
    if not command[0].startswith("/"):
        # A bare name would be looked up on PATH: the program run must be the one allowed.
        raise InvalidInput("tools.command", "the program must be an absolute path")


def command_refusal(command: tuple[str, ...], allowed: Collection[str]) -> str | None:
    """Why a stdio server's command may not run, or None: its program must be one the
    operator listed (MESH_MCP_STDIO_COMMANDS), exactly, so a tenant runs nothing else."""
    if command[0] in allowed:
        return None
    if not allowed:
        return "stdio MCP servers are off: MESH_MCP_STDIO_COMMANDS lists no program"
    return f"{command[0]} is not a program MESH_MCP_STDIO_COMMANDS allows"


@dataclass(frozen=True)
class AgentTypeDef:
    """One version of an agent type."""

    name: str
    description: str
    role: str
    capabilities: tuple[str, ...] = ()
    reads: tuple[MemoryType, ...] = (MemoryType.FACT, MemoryType.CONTEXT)
    writes: MemoryType = MemoryType.FACT
    answer: dict[str, object] | None = None  # a JSON Schema; None: free text
    model: ModelDefaults = ModelDefaults()
    tools: tuple[ToolServer, ...] = ()
    max_tool_calls: int | None = None  # None: the settings' limit
    # The shared memory its steps' prompts may hold, in estimated tokens; None: the settings'.
    memory_tokens: int | None = None
    queue: str = GENERAL_QUEUE
    confidence: float = 0.7  # of what it writes to memory
    version: int = BUILTIN_VERSION
    is_builtin: bool = False
    created_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise InvalidInput("name", "must be 2-32 characters: a-z, 0-9 and -, from a letter")
        if not self.description.strip() or len(self.description) > MAX_DESCRIPTION:
            raise InvalidInput("description", f"must be 1-{MAX_DESCRIPTION} characters")
        if not self.role.strip() or len(self.role) > MAX_ROLE:
            raise InvalidInput("role", f"must be 1-{MAX_ROLE} characters")
        if len(self.capabilities) > MAX_CAPABILITIES:
            raise InvalidInput("capabilities", f"at most {MAX_CAPABILITIES}")
        if self.queue not in (GENERAL_QUEUE, own_queue(self.name)):
            raise InvalidInput(
                "queue", f"must be {GENERAL_QUEUE!r} or the type's own {own_queue(self.name)!r}"
            )
        if self.max_tool_calls is not None and not 1 <= self.max_tool_calls <= 32:
            raise InvalidInput("max_tool_calls", "must be between 1 and 32")
        if self.memory_tokens is not None and not 0 <= self.memory_tokens <= MAX_MEMORY_TOKENS:
            raise InvalidInput("memory_tokens", f"must be between 0 and {MAX_MEMORY_TOKENS}")
        if self.answer is not None and self.answer.get("type") != "object":
            # The full JSON Schema check is meshcore.agents.answer_schema's (not stdlib).
            raise InvalidInput("answer", 'must describe a JSON object ("type": "object")')

    @property
    def answer_format(self) -> str:
        """The line of the prompt that says what shape to answer in."""
        return "draft" if self.answer is None else "json_schema"
