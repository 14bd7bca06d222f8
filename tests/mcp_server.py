"""An MCP server on loopback (the `mcp` SDK's MCPServer over streamable HTTP) for tests, or
on its stdin and stdout (stdio), one process per session as a client runs it.

    python tests/mcp_server.py --port 8931 [--delay-ms 500]
    python tests/mcp_server.py --stdio --ledger PATH

Tools: `lookup` (read-only, idempotent), `send_email` (not idempotent) and `fail` (answers
with an error result). It counts every MCP request by method and records every tool call
with its arguments, and serves them at GET /calls, so a test in another process can see
what reached it even after the client that called it died; POST /reset clears them, and
POST /delay {"ms": N} changes the delay of the calls that start after it.
A call is recorded when the tool starts, before the delay: a worker killed mid-call still
shows the call it made.

Over stdio each session is a process of its own, and what reached it goes to the ledger file
instead, a JSON line an event, which outlives the process: {"method": name}, {"tool",
"arguments"}, and first {"environment": [names], "cwd": dir}, what the client let it have.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

DELAY_ENV = "MESH_TEST_MCP_DELAY_MS"


class Ledger:
    """What reached the server. Tools run on the event loop and the routes too, but a lock
    keeps it correct should uvicorn ever hand a request to another thread."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = path  # over stdio: every event is appended there too
        self.methods: Counter[str] = Counter()
        self.calls: list[dict[str, Any]] = []
        # Authorization headers as sent (test tokens only), so a test sees credentials arrive.
        self.authorizations: Counter[str] = Counter()

    def method(self, name: str, authorization: str | None) -> None:
        with self._lock:
            self.methods[name] += 1
            if authorization is not None:
                self.authorizations[authorization] += 1
            self._append({"method": name})

    def call(self, tool: str, arguments: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append({"tool": tool, "arguments": arguments})
            self._append({"tool": tool, "arguments": arguments})

    def started(self) -> None:
        """The process began: what its environment and directory were."""
        self._append({"environment": sorted(os.environ), "cwd": os.getcwd()})

    def _append(self, event: dict[str, Any]) -> None:
        if self._path is not None:
            with self._path.open("a", encoding="utf-8") as ledger:
                ledger.write(json.dumps(event) + "\n")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = Counter(call["tool"] for call in self.calls)
            return {
                "counts": dict(counts),
                "calls": list(self.calls),
                "methods": dict(self.methods),
                "authorizations": dict(self.authorizations),
            }

    def reset(self) -> None:
        with self._lock:
            self.methods.clear()
            self.calls.clear()
            self.authorizations.clear()


def build(delay_ms: int = 0, ledger_path: Path | None = None) -> tuple[MCPServer, Ledger]:
    ledger = Ledger(ledger_path)

    async def count_methods(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        # Every JSON-RPC request and notification, `initialize` and `tools/list` included:
        # what a client's cache or session reuse saves shows up here.
        http = ctx.request  # the Starlette request the message came in
        ledger.method(ctx.method, http.headers.get("authorization") if http else None)
        return await call_next(ctx)

    server: MCPServer = MCPServer("mesh-test-tools", middleware=[count_methods])

    delay = {"ms": delay_ms}

    async def pause() -> None:
        if delay["ms"]:
            await anyio.sleep(delay["ms"] / 1000)

    @server.tool(
        description="Look up a fact about the query.",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    async def lookup(query: str) -> str:
        ledger.call("lookup", {"query": query})
        await pause()
        return f"fact about {query}: 42 sources agree"

    @server.tool(
        description="Send an email.",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def send_email(to: str, subject: str) -> str:
        ledger.call("send_email", {"to": to, "subject": subject})
        await pause()
        return f"sent to {to}"

    @server.tool(description="Always fails, with the reason given.")
    async def fail(reason: str) -> str:
        ledger.call("fail", {"reason": reason})
        await pause()
        # ToolError is the SDK's anticipated failure: an isError result, not a JSON-RPC error.
        raise ToolError(reason)

    @server.custom_route("/calls", methods=["GET"])
    async def calls(request: Request) -> Response:
        return JSONResponse(ledger.snapshot())

    @server.custom_route("/reset", methods=["POST"])
    async def reset(request: Request) -> Response:
        ledger.reset()
        return JSONResponse({"reset": True})

    @server.custom_route("/delay", methods=["POST"])
    async def set_delay(request: Request) -> Response:
        delay["ms"] = int((await request.json())["ms"])
        return JSONResponse(delay)

    return server, ledger


def serve(port: int, delay_ms: int = 0) -> None:
    server, _ = build(delay_ms)
    app = server.streamable_http_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def serve_stdio(ledger_path: Path, delay_ms: int = 0) -> None:
    server, ledger = build(delay_ms, ledger_path)
    ledger.started()
    anyio.run(server.run_stdio_async)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    transport = parser.add_mutually_exclusive_group(required=True)
    transport.add_argument("--port", type=int)
    transport.add_argument("--stdio", action="store_true", help="serve on stdin and stdout")
    parser.add_argument("--ledger", type=Path, help="with --stdio: the file events go to")
    parser.add_argument(
        "--delay-ms",
        type=int,
        default=int(os.environ.get(DELAY_ENV, "0")),
        help=f"sleep this long inside each tool (default: ${DELAY_ENV} or 0)",
    )
    args = parser.parse_args()
    if args.stdio:
        if args.ledger is None:
            parser.error("--stdio needs --ledger")
        serve_stdio(args.ledger, args.delay_ms)
    else:
        serve(args.port, args.delay_ms)


if __name__ == "__main__":
    main()
