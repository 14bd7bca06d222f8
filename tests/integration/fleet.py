"""Real Celery worker processes for integration tests, started with `mesh worker`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

import redis

from meshcore import bootstrap
from meshcore.bootstrap import Mesh, Services
from meshcore.domain.task import Task
from meshcore.settings import Settings
from meshworkers.app import create_celery
from tests.conftest import API_KEY_SECRET, DATA_KEYS

PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")


@dataclass(frozen=True)
class WorkerSpec:
    hostname: str
    queues: Sequence[str]
    concurrency: int = 8
    metrics_port: int = 0  # 0: no /metrics (several workers share this host)


@dataclass
class Fleet:
    settings: Settings
    mesh: Mesh

    @property
    def services(self) -> Services:
        return self.mesh.tenant(self.settings.tenant)

    def wait(self, task: Task, timeout: float = 60.0) -> Task:
        """Poll the record until the task ends, as a client would."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.services.tasks.get(task.network_id, task.id)
            if current.status.is_terminal:
                return current
            time.sleep(0.1)
        raise AssertionError(f"task {task.id} still {current.status} after {timeout} s")

    def task(self, network_id: UUID, task_id: UUID) -> Task:
        return self.services.tasks.get(network_id, task_id)


@contextmanager
def fleet(
    database_url: str,
    redis_url: str,
    workers: Sequence[WorkerSpec],
    *,
    offline_latency_ms: int = 0,
    env: dict[str, str] | None = None,
) -> Iterator[Fleet]:
    """Start the workers on an emptied Redis database, yield, then stop them."""
    redis.Redis.from_url(redis_url).flushdb()
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
    env["MESH_DATA_KEYS"] = DATA_KEYS  # unless `env` names others: the workers and this agree
    env.update(extra)
    env.update(
        MESH_DATABASE_URL=database_url,
        MESH_REDIS_URL=redis_url,
        MESH_OFFLINE_LATENCY_MS=str(offline_latency_ms),
        MESH_LOG_LEVEL="WARNING",
    )
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meshcli.main",
                "worker",
                "--queues",
                ",".join(w.queues),
                "--concurrency",
                str(w.concurrency),
                "--hostname",
                w.hostname,
            ],
            env={**env, "MESH_METRICS_PORT": str(w.metrics_port)},
        )
        for w in workers
    ]
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        api_key_secret=API_KEY_SECRET,
        data_keys=env["MESH_DATA_KEYS"],
    )
    app = create_celery(settings)
    mesh = bootstrap.build(settings, app)
    try:
        _wait_ready(app, [w.hostname for w in workers], processes)
        yield Fleet(settings, mesh)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        mesh.close()


def _wait_ready(app, hostnames: list[str], processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a worker exited during start-up")
        replies = app.control.ping(destination=hostnames, timeout=0.5) or []
        answered = {name for reply in replies for name in reply}
        if answered >= set(hostnames):
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers {hostnames} did not answer a ping in time")
