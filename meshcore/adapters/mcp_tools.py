"""Tools on MCP servers, called from synchronous code through the `mcp` SDK: over streamable
HTTP, or over stdio with a program the operator allows, run on this worker.

Each call opens its own session (initialize, one request, close) on an event loop of the
calling thread, so a Celery worker thread needs no loop of its own and shares none. Over
stdio a session is a process: each listing and each call starts the program anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextlib import AbstractContextManager, AsyncExitStack, nullcontext
from typing import Any, TextIO, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
import mcp_types as types
from mcp.client import Transport
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from meshcore.domain.agent_types import McpEndpoint, command_refusal

# The port's types, here where they were first defined (and are still imported from).
from meshcore.ports import ToolInfo, ToolResult, ToolUnavailable

__all__ = ["McpTools", "ToolInfo", "ToolResult", "ToolUnavailable", "describe", "redact_url"]

LIST_TTL_SECONDS = 60.0
# A server whose cursors never end cannot hold a worker: past this many pages the listing
# is taken as it stands.
MAX_LIST_PAGES = 20
MAX_CAUSE = 300
# What closing a session may add to the timeout: a DELETE, on loopback a few ms. (A stdio
# server's process is stopped under a shield, as the SDK bounds it: at most some 6 s more.)
CLOSE_SECONDS = 1.0
# What a failed stdio server wrote last to its stderr, as much as its cause shows.
MAX_STDERR = 160

_T = TypeVar("_T")


def redact_url(url: str) -> str:
    """`url` without userinfo, query or fragment, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal lost its brackets in hostname
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def describe(endpoint: McpEndpoint) -> str:
    """A server as logs and errors name it: its URL redacted, or its program (the arguments
    are the tenant's, and may hold what it would not have shown)."""
    return redact_url(endpoint) if isinstance(endpoint, str) else endpoint[0]


class McpTools:
    """Lists and calls the tools of MCP servers; every method blocks the calling thread.

    `timeout` bounds a whole exchange, connection and handshake included; closing the
    session may add up to CLOSE_SECONDS. `headers` go to every HTTP server. A stdio server
    runs only when `stdio_commands` (MESH_MCP_STDIO_COMMANDS) lists its program: none does
    unless given.
    """

    def __init__(
        self,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        *,
        list_ttl: float = LIST_TTL_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        stdio_commands: Collection[str] = (),
    ) -> None:
        self._timeout = timeout
        self._stdio_commands = frozenset(stdio_commands)
        self._headers = dict(headers or {})
        self._list_ttl = list_ttl
        self._clock = clock
        # Building the default context reads the CA bundle, ~20 ms: most of a loopback call
        # when every session made its own. One context is safe to share between threads.
        self._ssl = ssl_context or httpx2.create_ssl_context()
        self._lock = threading.Lock()
        self._lists: dict[tuple[McpEndpoint, str], tuple[float, list[ToolInfo]]] = {}

    def list_tools(
        self, url: McpEndpoint, headers: Mapping[str, str] | None = None
    ) -> list[ToolInfo]:
        merged = self._merge(headers)
        # The credentials are part of the key, as a digest: a server may show each caller
        # different tools, and the cache should not keep credentials in the clear.
        key = (url, _digest(merged))
        now = self._clock()
        with self._lock:
            hit = self._lists.get(key)
            if hit is not None and now - hit[0] < self._list_ttl:
                return list(hit[1])
        # Fetched outside the lock: a slow server must not stall other servers' callers.
        # Two threads missing together both fetch, which is harmless for a listing.
        tools = self._run(url, merged, _list_all, calls_tool=False)
        server = describe(url)
        infos = [_tool_info(server, tool) for tool in tools]
        with self._lock:
            # Expired listings go here, not on a timer: one per server and credential, and
            # credentials come and go with tenants.
            for old in [k for k, (at, _) in self._lists.items() if now - at >= self._list_ttl]:
                del self._lists[old]
            self._lists[key] = (now, infos)
        return list(infos)

    def call_tool(
        self,
        url: McpEndpoint,
        name: str,
        arguments: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> ToolResult:
        started = time.perf_counter()

        async def call(session: ClientSession) -> types.CallToolResult:
            request = types.CallToolRequest(
                params=types.CallToolRequestParams(name=name, arguments=dict(arguments))
            )
            # Not session.call_tool: on a fresh session it lists the server's tools first
            # to check structured output against the tool's schema, a second request per
            # call for a check whose failure would only hide the text the model needs.
            return await session.send_request(request, types.CallToolResult)

        try:
            result = self._run(url, self._merge(headers), call, calls_tool=True)
        except _RejectedCall as rejected:
            # The server refused the call itself (an unknown tool, arguments that do not
            # fit): the model that chose them should read why, as it would an error result.
            return ToolResult(
                text=rejected.message,
                is_error=True,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        return ToolResult(
            text=_text_of(result),
            is_error=bool(result.is_error),
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def forget(self, url: McpEndpoint | None = None) -> None:
        """Drop cached listings, of one server or of all."""
        with self._lock:
            if url is None:
                self._lists.clear()
            else:
                for key in [key for key in self._lists if key[0] == url]:
                    del self._lists[key]

    def _merge(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        return {**self._headers, **(headers or {})}

    def _run(
        self,
        endpoint: McpEndpoint,
        headers: dict[str, str],
        action: Callable[[ClientSession], Awaitable[_T]],
        *,
        calls_tool: bool,
    ) -> _T:
        server = describe(endpoint)
        if isinstance(endpoint, tuple) and (
            refused := command_refusal(endpoint, self._stdio_commands)
        ):
            # Checked again here, not only when the type was saved: the operator may have
            # taken the program off the list since, and then it must not start at all.
            raise ToolUnavailable(server, refused)
        statuses: list[int] = []
        may_have_run = False

        async def note_status(response: httpx2.Response) -> None:
            if response.status_code >= 400:
                statuses.append(response.status_code)

        async def session_run(errlog: TextIO | None) -> _T:
            nonlocal may_have_run
            got: list[_T] = []
            # The exchange gets the timeout, and closing the session a little more: a session
            # closed in time sends its DELETE (and a timed-out call its cancellation), where
            # one cancelled whole would leave the server holding it until it idles out.
            with anyio.move_on_after(self._timeout + CLOSE_SECONDS):
                async with AsyncExitStack() as stack:
                    if isinstance(endpoint, str):
                        http = await stack.enter_async_context(
                            httpx2.AsyncClient(
                                headers=headers,
                                timeout=httpx2.Timeout(self._timeout),
                                verify=self._ssl,
                                event_hooks={"response": [note_status]},
                            )
                        )
                        transport: Transport = streamable_http_client(endpoint, http_client=http)
                    else:
                        transport = stdio_client(_stdio_parameters(endpoint), errlog=errlog)
                    read, write = await stack.enter_async_context(transport)
                    session = await stack.enter_async_context(ClientSession(read, write))
                    # One deadline over the whole exchange: the SDK's timeouts cover single
                    # reads, and a server slow at every step could outlast each of them.
                    with anyio.fail_after(self._timeout):
                        await session.initialize()
                        may_have_run = calls_tool
                        got.append(await action(session))
            if not got:
                raise TimeoutError
            # A server that answered but was slow to close the session still answered.
            return got[0]

        if _loop_running():
            # anyio.run would refuse anyway; said here so it is not mistaken for the server's.
            raise RuntimeError("McpTools blocks: call it from a thread with no running event loop")
        with _stderr_for(endpoint) as errlog:
            try:
                return anyio.run(session_run, errlog)
            except BaseException as exc:
                cause = _root_cause(exc)
                if cause is None:
                    raise  # a KeyboardInterrupt or SystemExit is the process's, not the server's
                if (
                    may_have_run
                    and isinstance(cause, MCPError)
                    and cause.code == types.INVALID_PARAMS
                ):
                    raise _RejectedCall(cause.message) from None
                text = _describe(cause, statuses)
                if isinstance(endpoint, str):
                    text = text.replace(endpoint, server)
                elif errlog is not None and (said := _last_line(errlog)):
                    text = f"{text}; its stderr ends: {said}"
                raise ToolUnavailable(
                    server, text[:MAX_CAUSE], may_have_run=may_have_run
                ) from cause


class _RejectedCall(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _list_all(session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_LIST_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _stdio_parameters(command: tuple[str, ...]) -> StdioServerParameters:
    # No env of its own: the process gets the SDK's default environment (HOME, LOGNAME,
    # PATH, SHELL, TERM, USER), none of the worker's secrets (MESH_DATA_KEYS, provider keys).
    # From /, so a relative path in its arguments means the same on every worker.
    return StdioServerParameters(command=command[0], args=list(command[1:]), cwd="/")


def _stderr_for(endpoint: McpEndpoint) -> AbstractContextManager[TextIO | None]:
    """Where a stdio server's stderr goes: a file of its own, read when it fails. Not the
    worker's stderr, which carries its JSON logs (and under Celery may not be a file)."""
    if isinstance(endpoint, str):
        return nullcontext(None)
    return cast(TextIO, tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"))


def _last_line(errlog: TextIO) -> str:
    # Its tail only: a server may have written much before it failed.
    raw = errlog.buffer
    raw.seek(0, 2)
    raw.seek(max(0, raw.tell() - 4096))
    lines = [line.strip() for line in raw.read().decode(errors="replace").splitlines()]
    said = [line for line in lines if line]
    return said[-1][-MAX_STDERR:] if said else ""


def _tool_info(server: str, tool: types.Tool) -> ToolInfo:
    hints = tool.annotations
    # readOnlyHint implies idempotentHint: the spec gives the latter meaning only for tools
    # that change something, and a tool that changes nothing is safe to call again.
    idempotent = bool(hints and (hints.idempotent_hint or hints.read_only_hint))
    return ToolInfo(
        server=server,
        name=tool.name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema),
        idempotent=idempotent,
    )


def _text_of(result: types.CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource) and isinstance(
            block.resource, types.TextResourceContents
        ):
            parts.append(block.resource.text)
        else:
            # The model reads text only; it should still know something came back.
            parts.append(f"[{block.type} content omitted]")
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, sort_keys=True)
    return "\n".join(parts)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _root_cause(exc: BaseException) -> Exception | None:
    """The first real error inside the task groups' ExceptionGroups, past cancellations."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _root_cause(inner)
            if found is not None:
                return found
        return None
    # asyncio's CancelledError is a BaseException, so this passes over it too.
    return exc if isinstance(exc, Exception) else None


def _describe(cause: Exception, statuses: list[int]) -> str:
    if isinstance(cause, TimeoutError):
        text = "no answer within the timeout"
    elif isinstance(cause, MCPError):
        text = f"MCP error {cause.code}: {cause.message}"
    else:
        text = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    if statuses:
        text = f"HTTP {statuses[-1]}; {text}"
    return text[:MAX_CAUSE]


def _digest(headers: Mapping[str, str]) -> str:
    canonical = json.dumps(sorted((k.lower(), v) for k, v in headers.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()
