"""`mesh serve` as a process: one instance per data dir, a Redis that dies, a quick clean stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from meshcli.serve import COLD_STOP_SECONDS, STOP_GRACE_SECONDS
from tests.e2e.server import AUTH, ServeProcess, complete_a_task, poll, serve_process

pytestmark = pytest.mark.e2e


def _redis_pids(serve: ServeProcess) -> set[int]:
    return {pid for pid, cmd in serve.children().items() if "redis-server" in cmd}


@pytest.mark.drill  # minutes of stops and restarts: `make chaos`
def test_a_second_serve_on_one_data_dir_refuses_and_leaves_the_first_untouched(
    tmp_path: Path,
) -> None:
    with serve_process(tmp_path) as first:
        first.wait_ready()
        # Its own children: the workers' pools and beat may still be forking below them.
        before = set(first.children(recursive=False))

        # As a second `make run` in the same folder would: same data dir, same port.
        with serve_process(tmp_path, port=first.port) as second:
            code = second.wait_exit(timeout=10)

        assert code != 0
        reason = (
            f"Mesh is already running from {tmp_path} (pid {first.process.pid}) "
            f"on port {first.port}"
        )
        assert second.output.strip().splitlines() == [reason]
        assert httpx.get(f"{first.base}/readyz", timeout=5).status_code == 200
        assert complete_a_task(first.base)["status"] == "completed"
        assert set(first.children(recursive=False)) == before  # the same API, workers, Redis


def test_a_second_serve_on_a_port_in_use_refuses_at_once(tmp_path: Path) -> None:
    with serve_process(tmp_path / "one") as first:
        first.wait_ready()
        # Its own children: the workers' pools and beat may still be forking below them.
        before = set(first.children(recursive=False))

        with serve_process(tmp_path / "two", port=first.port) as second:
            code = second.wait_exit(timeout=10)

        assert code != 0
        assert f"port {first.port} is already in use" in second.output
        assert "Connection in use" not in second.output
        assert set(first.children(recursive=False)) == before
        assert httpx.get(f"{first.base}/readyz", timeout=5).status_code == 200


@pytest.mark.drill  # minutes of stops and restarts: `make chaos`
def test_serve_restarts_its_embedded_redis_when_it_dies(tmp_path: Path) -> None:
    with serve_process(tmp_path) as serve:
        serve.wait_ready()
        assert complete_a_task(serve.base)["status"] == "completed"
        (killed,) = _redis_pids(serve)

        os.kill(killed, signal.SIGKILL)

        deadline = time.monotonic() + 30
        while not _redis_pids(serve) - {killed}:
            assert time.monotonic() < deadline, f"no new Redis:\n{serve.output[-3000:]}"
            time.sleep(0.2)
        task = complete_a_task(serve.base, "Write the email after the Redis restart")
        assert serve.process.poll() is None

    assert task["status"] == "completed"
    assert "embedded Redis exited" in serve.output


@pytest.mark.drill
@pytest.mark.parametrize("how", ["Ctrl-C (SIGINT to the process group)", "SIGINT", "SIGTERM"])
def test_an_idle_serve_stops_within_5_s_and_says_so(tmp_path: Path, how: str) -> None:
    with serve_process(tmp_path) as serve:
        serve.wait_ready()
        # Finished tasks leave their deadline timers (ETA messages) with the coordinator.
        for _ in range(3):
            assert complete_a_task(serve.base)["status"] == "completed"
        time.sleep(1)

        sent = time.monotonic()
        if how.startswith("Ctrl-C"):
            os.killpg(serve.process.pid, signal.SIGINT)
        else:
            serve.process.send_signal(getattr(signal, how))
        code = serve.wait_exit(timeout=60)
        took = time.monotonic() - sent

    after = [line for at, line in serve.lines if at >= sent]
    assert took < 5, f"stopped in {took:.1f} s:\n" + "\n".join(after)
    assert code == 0
    assert not [line for line in after if "Restoring" in line or "SIGKILL" in line]
    assert [line for line in after if line.strip()][-1] == "Mesh stopped."


@pytest.mark.drill  # minutes of stops and restarts: `make chaos`
def test_a_busy_serve_hands_its_steps_back_within_its_grace_and_they_complete_later(
    tmp_path: Path,
) -> None:
    slow = {"MESH_OFFLINE_LATENCY_MS": "60000"}  # every model call outlasts the grace period
    with serve_process(tmp_path, env=slow) as serve:
        serve.wait_ready()
        with httpx.Client(base_url=serve.base, timeout=10, headers=AUTH) as client:
            network_id = client.post("/api/mesh/networks", json={"name": "busy"}).json()["id"]
            # The client's own plan: no planning call, so its steps start at once.
            plan = [{"key": "draft", "agent": "content", "description": "Draft it"}]
            location = client.post(
                f"/api/mesh/networks/{network_id}/tasks",
                json={"description": "Launch email", "plan": plan},
            ).headers["Location"]
            deadline = time.monotonic() + 120
            while client.get(location).json()["status"] != "running":  # its steps are running
                assert time.monotonic() < deadline
                time.sleep(0.2)
        time.sleep(1)

        sent = time.monotonic()
        serve.process.send_signal(signal.SIGTERM)
        code = serve.wait_exit(timeout=60)
        took = time.monotonic() - sent

    assert took < STOP_GRACE_SECONDS + COLD_STOP_SECONDS + 5
    assert code == 0
    assert "handing its work back" in serve.output
    assert [line for _, line in serve.lines if line.strip()][-1] == "Mesh stopped."
    fast = {"MESH_STALL_SECONDS": "10", "MESH_SWEEP_INTERVAL_SECONDS": "2"}
    with serve_process(tmp_path, env=fast) as again:
        again.wait_ready()
        with httpx.Client(base_url=again.base, timeout=10, headers=AUTH) as client:
            task = poll(client, location.replace(serve.base, again.base), timeout=120)
    assert task["status"] == "completed"
