"""timeout_seconds bounds a task, whatever its steps are doing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, StepStatus, TaskStatus
from meshworkers.app import QUEUES
from tests.integration.fleet import Fleet, WorkerSpec, fleet

pytestmark = pytest.mark.integration

LATENCY_MS = 1000


@pytest.fixture(scope="module")
def slow_workers(database_url: str, redis_url: str) -> Iterator[Fleet]:
    spec = WorkerSpec("slow@mesh-test", QUEUES, concurrency=16)
    url = redis_url.rsplit("/", 1)[0] + "/11"
    with fleet(database_url, url, [spec], offline_latency_ms=LATENCY_MS) as running:
        yield running


def test_a_task_past_its_timeout_ends_timed_out_keeping_what_it_has(slow_workers: Fleet) -> None:
    # Plan, wave, synthesis and review take a second each: four seconds cannot hold them all.
    net = slow_workers.services.networks.create(
        name=f"it-{uuid4().hex[:8]}",
        description="",
        config=NetworkConfig(timeout_seconds=3, quality_threshold=0.0),
    )
    task = slow_workers.services.tasks.submit(
        net.id, description="Write the launch email", context={}, priority=Priority.NORMAL
    )
    started = time.monotonic()

    done = slow_workers.wait(task, timeout=30)

    assert done.status is TaskStatus.TIMED_OUT
    assert time.monotonic() - started < 3 + 2 * LATENCY_MS / 1000 + 2
    assert done.error == "timed out after 3 s"
    assert done.result is not None and done.result.partial is True
    recorded = [s for s in done.subtasks if s.step and s.step.status is StepStatus.COMPLETED]
    kept = {c.subtask: c.output for c in done.result.contributions or ()}
    assert kept == {s.key: s.step.output for s in recorded}
    assert done.history[-1].status is TaskStatus.TIMED_OUT
