"""`mesh serve` as a real process, for tests that talk to Mesh over HTTP."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from tests.conftest import API_KEY_SECRET, DATA_KEYS

PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")
FINAL = {"completed", "failed", "cancelled", "timed_out"}
STARTED = "Stop with Ctrl-C."  # the banner's last line: every child has been started
# Every `mesh serve` here accepts this development key (tenant `default`, every scope) and
# hashes real keys under this secret, unless the test's env says otherwise.
DEV_KEY = "mesh-tests-dev-key"
AUTH = {"Authorization": f"Bearer {DEV_KEY}"}
AUTH_ENV = {
    "MESH_DEV_API_KEY": DEV_KEY,
    "MESH_API_KEY_SECRET": API_KEY_SECRET,
    "MESH_DATA_KEYS": DATA_KEYS,
}


def serve_env(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """`base` with AUTH_ENV and then `extra` over it. An AUTH_ENV variable that `extra` sets
    to "" is left unset: `{"MESH_DEV_API_KEY": ""}` is a serve without a development key
    (Settings would read "" as a key of its own)."""
    env = {**base, **AUTH_ENV, **extra}
    return {k: v for k, v in env.items() if not (k in AUTH_ENV and v == "")}


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
    inherited = {
        k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS and not k.startswith("MESH_")
    }
    env = serve_env(
        inherited, {**(env or {}), **{f"MESH_{k.upper()}": v for k, v in settings.items()}}
    )
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


def _wait_ready(base: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
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
    """GET the task's Location until it ends, as a client of the API would (with the
    client's own key, or else the development key)."""
    headers = {} if "Authorization" in client.headers else AUTH
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(location, headers=headers)
        # A refused key never gets better; a 503 may (its body's status is no task status).
        assert answer.status_code not in (401, 403, 404), answer.text
        task = answer.json()
        if task["status"] in FINAL:
            return task
        time.sleep(0.1)
    raise AssertionError(f"{location} still {task['status']} after {timeout} s")


def workers_ready(client: httpx.Client, network_id: str) -> None:
    """Wait until a first task completes: the workers are up and have loaded their models."""
    headers = {} if "Authorization" in client.headers else AUTH
    response = client.post(
        f"/api/mesh/networks/{network_id}/tasks", json={"description": "warm up"}, headers=headers
    )
    assert response.status_code == 202, response.text
    poll(client, response.headers["Location"], timeout=90)


MESH = Path(sys.executable).with_name("mesh")  # the console script, as `make run` starts it


class ServeProcess:
    """`mesh serve` run as a user runs it (the `mesh` script), its output kept line by line.

    Unlike mesh_serve() it hands the test the process, so a test can signal it, start a second
    one beside it, or look at its children.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in PROVIDER_KEYS and not k.startswith("MESH_")
        }
        environ.update(MESH_LOG_LEVEL="INFO", MESH_METRICS_PORT="0")
        environ = serve_env(environ, env or {})
        environ.update(MESH_PORT=str(self.port), MESH_DATA_DIR=str(data_dir))
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            [str(MESH), "serve"],
            env=environ,
            cwd=cwd,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_ready(self, timeout: float = 90) -> None:
        """The API answers, and every child has been started (the banner is out)."""
        deadline = time.monotonic() + timeout
        try:
            _wait_ready(self.base, self.process, timeout=timeout)
            while STARTED not in self.output:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("mesh serve printed no banner")
                time.sleep(0.1)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; it printed:\n{self.output[-4000:]}") from exc

    def wait_exit(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def children(self, *, recursive: bool = True) -> dict[int, str]:
        """The pids of every running process below this one (or only its own children), with
        their command lines."""
        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=recursive):
            with contextlib.suppress(psutil.NoSuchProcess):  # zombies included
                found[child.pid] = " ".join(child.cmdline())
        return found

    def close(self) -> None:
        """Stop it if it still runs; leave nothing behind, even if it misbehaved."""
        if self.process.poll() is None:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
            for child in descendants:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        self._reader.join(timeout=5)


@contextmanager
def serve_process(data_dir: Path, **options: object) -> Iterator[ServeProcess]:
    """A ServeProcess that is stopped (and swept up) when the block ends."""
    serve = ServeProcess(data_dir, **options)  # type: ignore[arg-type]
    try:
        yield serve
    finally:
        serve.close()


def complete_a_task(
    base: str, description: str = "Write the launch email", key: str = DEV_KEY
) -> dict:
    """Create a network, submit one task and poll it to the end, as a client would."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=10, headers=headers) as client:
        created = client.post("/api/mesh/networks", json={"name": "demo"})
        assert created.status_code == 201, created.text
        network_id = created.json()["id"]
        submitted = client.post(
            f"/api/mesh/networks/{network_id}/tasks", json={"description": description}
        )
        assert submitted.status_code == 202, submitted.text
        return poll(client, submitted.headers["Location"], timeout=90)


# A Mesh API key as `mesh serve` prints it at first start (meshcore.domain.keys's format).
PRINTED_KEY = re.compile(r"mesh_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def printed_keys(output: str) -> set[str]:
    """The API keys a `mesh serve` printed (the first start prints one, once)."""
    return set(PRINTED_KEY.findall(output))
