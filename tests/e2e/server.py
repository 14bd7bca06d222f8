"""`mesh serve` as a real process, for tests that talk to Mesh over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")
FINAL = {"completed", "failed", "cancelled", "timed_out"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mesh_serve(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    output: Path | None = None,
    **settings: str,
) -> Iterator[str]:
    """Run `mesh serve` with MESH_<NAME> settings (and `env`); yield its URL once it is ready.

    Everything its processes print goes to `output` when given (else to the test's output).
    """
    port = free_port()
    extra = env or {}
    env = {
        k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS and not k.startswith("MESH_")
    }
    env.update(extra)
    env.update({f"MESH_{k.upper()}": v for k, v in settings.items()})
    env.setdefault("MESH_LOG_LEVEL", "WARNING")
    env.update(MESH_PORT=str(port), MESH_DATA_DIR=str(data_dir))
    sink = output.open("wb") if output else None
    process = subprocess.Popen(
        [sys.executable, "-m", "meshcli.main", "serve"],
        env=env,
        start_new_session=True,
        stdout=sink,
        stderr=subprocess.STDOUT if sink else None,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        if sink:
            sink.close()


def _wait_ready(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mesh serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError("mesh serve did not become ready")


def poll(client: httpx.Client, location: str, timeout: float = 60) -> dict:
    """GET the task's Location until it ends, as a client of the API would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(location).json()
        if task["status"] in FINAL:
            return task
        time.sleep(0.1)
    raise AssertionError(f"{location} still {task['status']} after {timeout} s")


def workers_ready(client: httpx.Client, network_id: str) -> None:
    """Wait until a first task completes: the workers are up and have loaded their models."""
    response = client.post(
        f"/api/mesh/networks/{network_id}/tasks", json={"description": "warm up"}
    )
    poll(client, response.headers["Location"], timeout=90)
