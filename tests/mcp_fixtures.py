"""The MCP test server (tests/mcp_server.py) in a subprocess of its own, for tests to call.

    with mcp_server(delay_ms=0) as server:
        server.url       # the MCP endpoint, http://127.0.0.1:PORT/mcp
        server.calls()   # {"counts": {tool: n}, "calls": [{"tool", "arguments"}],
                         #  "methods": {"initialize": n, "tools/list": n, "tools/call": n, ...},
                         #  "authorizations": {authorization header: n}}
        server.reset()   # forget what it has seen
        server.set_delay(ms)  # each tool sleeps this long before it answers

A process of its own, not a thread: it outlives a client that is killed, and a test can kill
or stop it (`server.process`) without taking pytest's event loops or threads along.

Over stdio the client starts the server itself, a process a session:

    server = stdio_server(tmp_path)
    server.command   # (program, "--ledger", path): what an agent type's `command` holds
    server.program   # the program alone, an executable of its own: what an allow-list names
    server.calls()   # as above, from the ledger file every process appends to
    server.environments()  # each process's environment variable names, in order
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

SCRIPT = Path(__file__).with_name("mcp_server.py")
READY_SECONDS = 30
STDIO_PROGRAM = "mesh-test-mcp"


class McpTestServer:
    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.port, self.process = port, process
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/mcp"

    def calls(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.base}/calls", timeout=5)
        answer.raise_for_status()
        return answer.json()

    def count(self, tool: str) -> int:
        return self.calls()["counts"].get(tool, 0)

    def method_count(self, method: str) -> int:
        return self.calls()["methods"].get(method, 0)

    def reset(self) -> None:
        httpx.post(f"{self.base}/reset", timeout=5).raise_for_status()

    def set_delay(self, ms: int) -> None:
        """Make each tool sleep `ms` before it answers, from the next call on."""
        httpx.post(f"{self.base}/delay", json={"ms": ms}, timeout=5).raise_for_status()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mcp_server(delay_ms: int = 0) -> Iterator[McpTestServer]:
    """Start the MCP test server on a free loopback port; stop it when the block ends."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(port), "--delay-ms", str(delay_ms)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        server = McpTestServer(port, process)
        try:
            _wait_ready(server, log)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(server: McpTestServer, log: Any) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the MCP test server exited: {log.read().decode(errors='replace')}")
        try:
            server.calls()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(
        f"the MCP test server did not answer on port {server.port} in {READY_SECONDS} s"
    )


class StdioTestServer:
    def __init__(self, program: Path, ledger: Path) -> None:
        self.program, self.ledger = str(program), ledger

    @property
    def command(self) -> tuple[str, ...]:
        return (self.program, "--ledger", str(self.ledger))

    def events(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        lines = self.ledger.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    def calls(self) -> dict[str, Any]:
        events = self.events()
        calls = [{"tool": e["tool"], "arguments": e["arguments"]} for e in events if "tool" in e]
        methods: dict[str, int] = {}
        for event in events:
            if "method" in event:
                methods[event["method"]] = methods.get(event["method"], 0) + 1
        counts: dict[str, int] = {}
        for call in calls:
            counts[call["tool"]] = counts.get(call["tool"], 0) + 1
        return {"counts": counts, "calls": calls, "methods": methods}

    def count(self, tool: str) -> int:
        return self.calls()["counts"].get(tool, 0)

    def environments(self) -> list[list[str]]:
        return [e["environment"] for e in self.events() if "environment" in e]

    def reset(self) -> None:
        self.ledger.unlink(missing_ok=True)


def stdio_server(directory: Path) -> StdioTestServer:
    """Write into `directory` a program that runs the MCP test server over stdio: a program of
    its own, as an operator would allow, not the Python interpreter (which runs anything)."""
    program = directory / STDIO_PROGRAM
    program.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(SCRIPT))} --stdio "$@"\n',
        encoding="utf-8",
    )
    program.chmod(0o755)
    return StdioTestServer(program, directory / "ledger.jsonl")
