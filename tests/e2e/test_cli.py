"""The `mesh` command and `make flower` as a newcomer runs them, against a real `mesh serve`."""

from __future__ import annotations

import json
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
STEP_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3}  step ")


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
    # Each step as it happened, from the task's event stream: started, then finished with
    # its agent, model, latency and tokens.
    steps = [line.split() for line in lines if STEP_LINE.match(line)]
    plan = [s for s in steps if s[2] == "@plan"]
    assert [s[4] for s in plan][:2] == ["started", "finished"]
    assert plan[1][3] == "coordinator"
    assert plan[1][5].startswith("mesh-offline/") and plan[1][7] == "ms"
    assert "tokens" in plan[1]
    finished = {s[2] for s in steps if s[4] == "finished"}
    assert finished == {s["key"] for s in task["subtasks"]} | {"@plan", "@synthesis", "@review"}
    assert any(line.split()[1:3] == ["critic", "score"] for line in lines)
    assert [line.split()[1:3] for line in lines if " status " in line][-1] == [
        "status",
        "completed",
    ]


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


def _api(served: ServeProcess, key: str, *args: str) -> subprocess.CompletedProcess:
    """A `mesh` command that talks to the served API, with the key in the environment."""
    return _mesh(*args, env=_clean_env(MESH_URL=f"localhost:{served.port}", MESH_API_KEY=key))


@pytest.fixture(scope="module")
def finished(served: ServeProcess, key: str) -> dict:
    """A task of the mesh-cli network that has completed, submitted with --json."""
    done = _api(
        served, key, "submit", "Write the changelog", "--wait", "--json", "--context", "tone=dry"
    )
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)  # nothing but the task: no progress lines
    assert task["status"] == "completed"
    assert task["context"] == {"tone": "dry"}
    return task


def test_tasks_events_prints_every_event_of_a_task(
    served: ServeProcess, key: str, finished: dict
) -> None:
    lines = _api(served, key, "tasks", "events", finished["id"])
    as_json = _api(served, key, "tasks", "events", finished["id"], "--json")
    later = _api(served, key, "tasks", "events", finished["id"], "--follow", "--after", "3")

    assert lines.returncode == 0, lines.stderr
    printed = lines.stdout.splitlines()
    assert len(printed) == finished["revision"]
    assert printed[0].split()[1:] == ["status", "queued"]
    assert printed[-1].split()[1:3] == ["status", "completed"]
    assert any(STEP_LINE.match(line) for line in printed)
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["id"] for e in events] == list(range(1, finished["revision"] + 1))
    assert events[-1]["type"] == "task.completed"
    assert events[-1]["result"]["answer"] == finished["result"]["answer"]
    assert later.returncode == 0, later.stderr
    assert later.stdout.splitlines() == printed[3:]


def test_tasks_list_and_show_find_a_task_of_the_default_network(
    served: ServeProcess, key: str, finished: dict
) -> None:
    listed = _api(served, key, "tasks", "list", "--status", "completed", "--json")
    table = _api(served, key, "tasks", "list")
    shown = _api(served, key, "tasks", "show", finished["id"])

    assert finished["id"] in {t["id"] for t in json.loads(listed.stdout)}
    assert table.stdout.split()[:5] == ["ID", "STATUS", "ITER", "CREATED", "DESCRIPTION"]
    assert finished["id"] in table.stdout
    assert shown.returncode == 0, shown.stderr
    assert f"task         {finished['id']}" in shown.stdout.splitlines()
    assert "status       completed" in shown.stdout.splitlines()
    assert finished["result"]["answer"] in shown.stdout
    assert f"/api/mesh/networks/{finished['network_id']}/tasks/{finished['id']}" in shown.stdout


def test_tasks_cancel_of_a_finished_task_fails_with_the_apis_message(
    served: ServeProcess, key: str, finished: dict
) -> None:
    done = _api(served, key, "tasks", "cancel", finished["id"])

    assert done.returncode == 1
    assert f"409: task {finished['id']} is completed" in done.stderr
    assert "only an unfinished task can be cancelled" in done.stderr


def test_a_task_outside_the_default_network_needs_its_network(
    served: ServeProcess, key: str, finished: dict
) -> None:
    created = _api(served, key, "networks", "create", "elsewhere", "--json")
    network_id = json.loads(created.stdout)["id"]
    submitted = _api(served, key, "submit", "Write a limerick", "--network", network_id, "--json")
    task_id = json.loads(submitted.stdout)["id"]

    missing = _api(served, key, "tasks", "show", task_id)
    found = _api(served, key, "tasks", "show", task_id, "--network", network_id, "--json")

    assert missing.returncode == 1
    assert f"Task {task_id} is not in the network mesh-cli: pass --network ID" in missing.stderr
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["network_id"] == network_id


def test_networks_create_takes_the_team_from_the_catalog(served: ServeProcess, key: str) -> None:
    team = ("coordinator", "critic", "research")
    agents = [arg for t in team for arg in ("--agent", t)]

    created = _api(served, key, "networks", "create", "small team", *agents, "--json")
    unknown = _api(served, key, "networks", "create", "odd", "--agent", "wizard")

    assert created.returncode == 0, created.stderr
    assert [a["type"] for a in json.loads(created.stdout)["agents"]] == list(team)
    assert unknown.returncode == 1
    assert "agents.0.type" in unknown.stderr and "no agent type 'wizard'" in unknown.stderr


def test_agent_types_are_made_changed_read_and_deleted_from_the_command_line(
    served: ServeProcess, key: str, tmp_path: Path
) -> None:
    kind = {"name": "cli-legal", "description": "Checks claims.", "role": "You are legal."}
    (tmp_path / "legal.json").write_text(json.dumps(kind))
    (tmp_path / "stricter.json").write_text(json.dumps({**kind, "role": "You are strict."}))

    made = _api(served, key, "agent-types", "create", str(tmp_path / "legal.json"))
    stricter = str(tmp_path / "stricter.json")
    changed = _api(served, key, "agent-types", "change", "cli-legal", stricter)
    listed = _api(served, key, "agent-types", "list", "--json")
    first = _api(served, key, "agent-types", "show", "cli-legal", "--version", "1")
    deleted = _api(served, key, "agent-types", "delete", "cli-legal")
    builtin = _api(served, key, "agent-types", "delete", "research")

    assert made.stdout.strip() == "agent type cli-legal version 1", made.stderr
    assert changed.stdout.strip() == "agent type cli-legal version 2", changed.stderr
    found = {t["name"]: t for t in json.loads(listed.stdout)}
    assert found["cli-legal"]["role"] == "You are strict." and found["research"]["builtin"]
    assert json.loads(first.stdout)["role"] == "You are legal."
    assert deleted.returncode == 0, deleted.stderr
    assert builtin.returncode == 1 and "built-in" in builtin.stderr


def test_networks_list_json_parses_and_names_the_cli_network(
    served: ServeProcess, key: str, finished: dict
) -> None:
    done = _api(served, key, "networks", "list", "--json")

    assert done.returncode == 0, done.stderr
    networks = json.loads(done.stdout)
    assert finished["network_id"] in {n["id"] for n in networks if n["name"] == "mesh-cli"}


def test_networks_and_memory_round_trip(served: ServeProcess, key: str) -> None:
    created = _api(served, key, "networks", "create", "notes", "--description", "for memory")
    network_id = created.stdout.split()[1]
    added = _api(
        served,
        key,
        "memory",
        "add",
        "Mesh ships in May",
        "--type",
        "fact",
        "--confidence",
        "0.9",
        "--network",
        network_id,
        "--json",
    )
    listed = _api(served, key, "memory", "list", "--network", network_id, "--type", "fact")
    shown = _api(served, key, "networks", "show", network_id)
    deleted = _api(served, key, "networks", "delete", network_id, "--yes")
    gone = _api(served, key, "networks", "show", network_id)

    assert created.stdout.split()[::2] == ["network", "notes"]
    item = json.loads(added.stdout)
    assert (item["type"], item["content"], item["confidence"]) == ("fact", "Mesh ships in May", 0.9)
    assert listed.stdout.split()[:5] == ["ID", "TYPE", "CONFIDENCE", "CREATED", "CONTENT"]
    assert item["id"] in listed.stdout and "Mesh ships in May" in listed.stdout
    assert "description  for memory" in shown.stdout.splitlines()
    assert len(shown.stdout.split("AGENT", 1)[1].splitlines()[1:]) == 7  # the default team
    assert deleted.stdout.strip() == f"network {network_id} deleted"
    assert gone.returncode == 1 and "404" in gone.stderr


def test_the_workers_run_below_the_apis_cpu_priority(served: ServeProcess) -> None:
    niceness = {
        pid: psutil.Process(pid).nice()
        for pid, line in served.children(recursive=False).items()
        if "gunicorn" in line or "worker --queues" in line
    }
    lines = served.children(recursive=False)
    api = [n for pid, n in niceness.items() if "gunicorn" in lines[pid]]
    workers = [n for pid, n in niceness.items() if "worker --queues" in lines[pid]]

    # When both cores are busy, a client is answered first; the workers take what is left.
    assert api == [os.nice(0)]
    assert len(workers) >= 2 and set(workers) == {os.nice(0) + 5}


def test_the_workers_share_the_libraries_their_zygote_imported(served: ServeProcess) -> None:
    lines = served.children(recursive=False)
    workers = [psutil.Process(pid) for pid, line in lines.items() if "worker --queues" in line]
    zygotes = [pid for pid, line in lines.items() if "meshcli.zygote" in line]

    # Forked by the zygote and handed to `mesh serve`, each worker holds litellm, Celery and
    # SQLAlchemy in pages it shares: far less of its resident memory is its own.
    assert len(zygotes) == 1 and len(workers) >= 2
    for worker in workers:
        memory = worker.memory_full_info()
        assert (memory.rss - memory.uss) / 2**20 > 100, worker.cmdline()


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
