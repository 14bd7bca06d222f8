"""Redis stopped for a minute under a client that keeps submitting and reading.

`mesh serve` runs on the test Postgres and a private redis-server, which the test kills and
later starts again, empty, on the same port. While it is down every submit is still
accepted (202 with its Location, within 2 s: the row is the record and the sweeper starts it
later), reads keep answering from Postgres, and nothing answers 500. Once Redis is back,
every accepted task completes on the same API and worker processes: none was restarted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.drills.harness import PrivateRedis
from tests.e2e.server import AUTH, FINAL, mesh_serve, poll, workers_ready

# A drill in length (a minute without Redis): it runs in `make chaos`.
pytestmark = [pytest.mark.e2e, pytest.mark.drill]

OUTAGE_SECONDS = 60
SUBMIT_LIMIT_SECONDS = 2.0  # the promise: a submit is answered within 2 s
COMPLETION_TIMEOUT = 240


@dataclass(frozen=True)
class Answer:
    method: str
    status: int  # 0: no answer within the client's timeout
    seconds: float
    location: str | None = None


def serve_processes(data_dir: Path) -> dict[int, str]:
    """The pids (and command lines) of `mesh serve`'s children, grandchildren included."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline[-2:] != ["meshcli.main", "serve"]:
            continue
        try:
            if process.environ().get("MESH_DATA_DIR") != str(data_dir):
                continue
            return {
                child.pid: " ".join(child.cmdline()[:6])
                for child in process.children(recursive=True)
            }
        except psutil.NoSuchProcess:
            continue
    raise AssertionError("mesh serve's process was not found")


def timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> Answer:
    started = time.monotonic()
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        return Answer(method, 0, time.monotonic() - started)
    return Answer(
        method, response.status_code, time.monotonic() - started, response.headers.get("Location")
    )


def test_a_minute_without_redis_loses_no_submit_and_restarts_nothing(
    tmp_path: Path, database_url: str
) -> None:
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    data_dir, output = tmp_path / "data", tmp_path / "mesh.log"
    try:
        with (
            mesh_serve(
                data_dir,
                output=output,
                database_url=database_url,
                redis_url=redis_server.url,
                agent_workers="1",
            ) as base,
            httpx.Client(base_url=base, timeout=30, headers=AUTH) as client,
        ):
            network_id = client.post(
                "/api/mesh/networks", json={"name": "outage", "config": {"quality_threshold": 0.0}}
            ).json()["id"]
            tasks = f"/api/mesh/networks/{network_id}/tasks"
            workers_ready(client, network_id)
            before = serve_processes(data_dir)

            redis_server.stop()
            answers: list[Answer] = []
            down_until = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < down_until:
                submit = timed(client, "POST", tasks, json={"description": "while Redis is away"})
                answers.append(submit)
                answers.append(timed(client, "GET", submit.location or tasks))
                answers.append(timed(client, "GET", tasks))
                time.sleep(0.5)
            redis_server.start()  # the same port, nothing kept

            accepted = [a.location for a in answers if a.method == "POST" and a.status == 202]
            deadline = time.monotonic() + COMPLETION_TIMEOUT
            done = [
                poll(client, location, timeout=max(1.0, deadline - time.monotonic()))
                for location in accepted
            ]
            after_submit = timed(client, "POST", tasks, json={"description": "after the outage"})
            assert after_submit.status == 202 and after_submit.location
            last = poll(client, after_submit.location, timeout=60)
            after = serve_processes(data_dir)
    finally:
        redis_server.stop()

    submits = [a for a in answers if a.method == "POST"]
    slowest = max(a.seconds for a in submits)
    print(
        f"\nredis outage {OUTAGE_SECONDS} s: {len(submits)} submits, {len(accepted)} accepted, "
        f"slowest submit {slowest:.2f} s, {len(answers) - len(submits)} reads, "
        f"statuses {sorted({a.status for a in answers})}"
    )
    assert [a for a in answers if a.status >= 500 or a.status == 0] == []
    assert [a for a in submits if a.status != 202 or a.location is None] == []
    assert slowest < SUBMIT_LIMIT_SECONDS
    assert [a for a in answers if a.method == "GET" and a.status != 200] == []
    assert len(accepted) >= 10
    assert [t["status"] for t in done] == ["completed"] * len(accepted)
    assert last["status"] == "completed" and last["status"] in FINAL
    assert after == before, "a process of mesh serve was replaced"
    assert "restarting" not in output.read_text(errors="replace")
