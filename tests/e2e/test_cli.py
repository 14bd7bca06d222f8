"""The `mesh` command and `make flower` as a newcomer runs them, against a real `mesh serve`."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.server import (
    MESH,
    PROVIDER_KEYS,
    ServeProcess,
    free_port,
    printed_keys,
    serve_process,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
URL = re.compile(r"http://\S+/api/mesh/networks/[0-9a-f-]+/tasks/[0-9a-f-]+")


def _clean_env(**extra: str) -> dict[str, str]:
    """A shell of the user's own: none of Mesh's settings, no provider keys."""
    env = {
        k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS and not k.startswith("MESH_")
    }
    return {**env, **extra}


def _mesh(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MESH), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One `mesh serve` from the repository's root, on a port that is not the default, started
    as a newcomer starts it: no development key, so its first start prints a key."""
    newcomer = {"MESH_DEV_API_KEY": "", "MESH_API_KEY_SECRET": ""}
    with serve_process(tmp_path_factory.mktemp("serve"), cwd=REPO, env=newcomer) as serve:
        serve.wait_ready()
        yield serve


@pytest.fixture(scope="module")
def key(served: ServeProcess) -> str:
    """The key the first start printed."""
    (printed,) = printed_keys(served.output)
    return printed


def test_the_banner_prints_a_submit_command_that_works_as_printed(
    served: ServeProcess, key: str
) -> None:
    (line,) = [line for line in served.lines if "Try it:" in line[1]]
    command = line[1].split("Try it:", 1)[1].strip()

    assert command.startswith(f"MESH_API_KEY={key} .venv/bin/mesh submit ")
    assert f"--url http://127.0.0.1:{served.port}" in command
    done = subprocess.run(
        command,
        shell=True,
        env=_clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout


def test_the_banner_says_once_that_the_offline_model_answers(served: ServeProcess) -> None:
    notes = [line for _, line in served.lines if "No provider keys" in line]

    assert len(notes) == 1
    assert "offline model" in notes[0]


def test_the_banner_says_nothing_of_the_offline_model_when_a_key_is_set(tmp_path: Path) -> None:
    with serve_process(tmp_path, env={"OPENAI_API_KEY": "sk-test"}) as serve:
        deadline = time.monotonic() + 60
        while "Stop with Ctrl-C" not in serve.output:
            assert time.monotonic() < deadline and serve.process.poll() is None, serve.output
            time.sleep(0.2)

        assert "No provider keys" not in serve.output
        # tests/e2e/server.py sets MESH_DEV_API_KEY: no key is made, and the banner says so.
        assert "MESH_DEV_API_KEY is in use (for development and tests only" in serve.output
        assert printed_keys(serve.output) == set()


def test_submit_reads_mesh_url_without_a_scheme_and_prints_the_verdict(
    served: ServeProcess, key: str
) -> None:
    done = _mesh(
        "submit",
        "Draft a pricing page",
        "--wait",
        env=_clean_env(MESH_URL=f"localhost:{served.port}", MESH_API_KEY=key),
    )

    assert done.returncode == 0, done.stderr
    (url,) = URL.findall(done.stdout)
    task = httpx.get(url, headers=_bearer(key), timeout=10).json()
    assert task["status"] == "completed"
    lines = done.stdout.splitlines()
    assert task["result"]["answer"] in done.stdout
    assert f"score     {task['result']['score']:.2f}" in done.stdout
    assert f"feedback  {task['result']['feedback']}" in lines
    assert f"task      {url}" in lines


def test_submit_without_wait_prints_the_task_url(served: ServeProcess, key: str) -> None:
    done = _mesh(
        "submit",
        "Write the launch email",
        "--no-wait",
        "--url",
        f"localhost:{served.port}",
        "--api-key",
        key,
        env=_clean_env(),
    )

    assert done.returncode == 0, done.stderr
    (url,) = URL.findall(done.stdout)
    assert url.startswith(f"http://localhost:{served.port}/")
    assert httpx.get(url, headers=_bearer(key), timeout=10).status_code == 200


def test_submit_without_a_key_says_how_to_pass_one(served: ServeProcess) -> None:
    done = _mesh("submit", "Write it", "--url", served.base, env=_clean_env())

    assert done.returncode == 1
    assert "--api-key KEY or MESH_API_KEY=KEY" in done.stderr


def test_mesh_keys_offers_create_list_and_revoke() -> None:
    done = _mesh("keys", "--help", env=_clean_env())

    assert done.returncode == 0
    assert {"create", "list", "revoke"} <= {line.split()[0] for line in _commands(done.stdout)}


def _commands(help_text: str) -> list[str]:
    return [line for line in help_text.split("Commands:", 1)[1].splitlines() if line.strip()]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_mesh_version_prints_the_installed_version() -> None:
    done = _mesh("--version", env=_clean_env())

    assert done.returncode == 0
    assert done.stdout.strip() == f"mesh, version {version('mesh')}"


def _make_flower(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "--no-print-directory", "flower"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_make_flower_without_a_running_mesh_says_to_start_it(tmp_path: Path) -> None:
    # What a stopped `make run` leaves behind: the settings of a Redis that no longer runs.
    (tmp_path / "redis.db.settings").write_text(
        '{"pidfile": "/nonexistent/redis.pid", "unixsocket": "/nonexistent/redis.socket",'
        f' "dbdir": "{tmp_path}", "dbfilename": "redis.db"}}'
    )
    flower = _make_flower(_clean_env(MESH_DATA_DIR=str(tmp_path)))
    try:
        output, _ = flower.communicate(timeout=20)
    finally:
        if flower.poll() is None:
            os.killpg(flower.pid, 9)

    assert flower.returncode != 0
    assert "start make run first" in output


def test_make_flower_honours_flower_port(tmp_path: Path) -> None:
    redis_port, flower_port = free_port(), free_port()
    redis = subprocess.Popen(
        [
            *("redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"),
            *("--save", "", "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
    )
    env = _clean_env(
        MESH_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", FLOWER_PORT=str(flower_port)
    )
    deadline = time.monotonic() + 10
    while subprocess.run(
        ["redis-cli", "-p", str(redis_port), "ping"], capture_output=True
    ).returncode:
        assert time.monotonic() < deadline, "private redis-server did not start"
        time.sleep(0.1)
    flower = _make_flower(env)
    try:
        assert flower.stdout is not None
        banner = flower.stdout.readline()
        deadline, answered = time.monotonic() + 60, None
        while answered is None and time.monotonic() < deadline:
            try:
                answered = httpx.get(f"http://127.0.0.1:{flower_port}/", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.5)
        listening = {
            c.laddr.ip
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == flower_port
        }
    finally:
        os.killpg(flower.pid, 15)
        try:
            flower.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # Flower sometimes takes longer over its shutdown on a loaded machine; what this
            # test checks was seen before it was asked to stop.
            os.killpg(flower.pid, 9)
            flower.wait(timeout=10)
        redis.kill()
        redis.wait()

    assert f"Flower on http://127.0.0.1:{flower_port} (this machine only)" in banner
    assert answered == 200
    assert listening == {"127.0.0.1"}  # operators' tools stay off the network
