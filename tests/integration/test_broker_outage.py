"""A worker outlives its Redis going away and coming back: it reconnects, it does not exit.

Each has run a task first, so it holds what a live worker holds: the coordinator a task's
deadline message (delivered with an ETA, unacknowledged until then), both their result
backend and control connections.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from meshcore.domain.task import TaskStatus
from tests.drills.harness import AGENT_QUEUES, Worker, drill


def wait_for_line(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{path.name} never logged {text!r}")


@pytest.mark.drill  # an outage drill: `make chaos`
def test_workers_that_ran_a_task_survive_a_redis_stop(tmp_path: Path, database_url: str) -> None:
    with drill(tmp_path, database_url) as (run, redis_server):
        run.start(Worker("coordinator", ["coordinator"], concurrency=8, beat=True))
        run.start(Worker("agents", AGENT_QUEUES))
        run.wait_ready(["coordinator", "agents"])
        tasks = run.submit_batch(1)
        done, _ = run.wait_all(tasks, 90)
        assert done[0].status is TaskStatus.COMPLETED
        logs = {name: run.logs / f"{name}.1.log" for name in run.workers}

        redis_server.stop()
        for log in logs.values():
            wait_for_line(log, "Connection to broker lost")
        time.sleep(5)  # the workers keep retrying; one that crashed has exited by now
        exited = {n: code for n, w in run.workers.items() if (code := w.process.poll()) is not None}
        assert exited == {}, {n: logs[n].read_text()[-3000:] for n in exited}

        redis_server.start()
        run.wait_ready(["coordinator", "agents"], timeout=60)
        again = run.submit_batch(1)
        done, _ = run.wait_all(again, 90)
        assert done[0].status is TaskStatus.COMPLETED
        assert [w.starts for w in run.workers.values()] == [1, 1]
        for log in logs.values():
            assert "Unrecoverable error" not in log.read_text()
