"""`mesh serve` as a process: one instance per data dir, a Redis that dies, a quick clean stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServeProcess, complete_a_task, serve_process

pytestmark = pytest.mark.e2e


def _redis_pids(serve: ServeProcess) -> set[int]:
    return {pid for pid, cmd in serve.children().items() if "redis-server" in cmd}


def test_a_second_serve_on_one_data_dir_refuses_and_leaves_the_first_untouched(
    tmp_path: Path,
) -> None:
    with serve_process(tmp_path) as first:
        first.wait_ready()
        before = first.children()

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
        assert first.children() == before  # the same API, workers and Redis


def test_a_second_serve_on_a_port_in_use_refuses_at_once(tmp_path: Path) -> None:
    with serve_process(tmp_path / "one") as first:
        first.wait_ready()
        before = first.children()

        with serve_process(tmp_path / "two", port=first.port) as second:
            code = second.wait_exit(timeout=10)

        assert code != 0
        assert f"port {first.port} is already in use" in second.output
        assert "Connection in use" not in second.output
        assert first.children() == before
        assert httpx.get(f"{first.base}/readyz", timeout=5).status_code == 200


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
