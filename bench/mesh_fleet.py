"""Mesh's side of a benchmark: real `mesh worker` processes, tasks sent, tasks waited for.

Tasks are submitted through TaskService (the row, then the message), exactly what the API's
POST does, so the orchestration figures do not include HTTP; the API has its own suite.
Completion is read from the record: the server-side created-to-ended time of each task.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID, uuid4

import psycopg

from bench import processes
from bench.processes import Proc, Servers, WorkerSpec
from meshcore import bootstrap
from meshcore.bootstrap import Mesh
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority
from meshworkers.app import create_celery

STALL_S = 45
TERMINAL = ("completed", "failed", "cancelled", "timed_out")
# One pass (plan, 5 specialists, synthesis, critic): the critic's score does not send the
# task round again, so every task has the same shape as the bare pipeline.
ONE_PASS = NetworkConfig(max_iterations=1, quality_threshold=0.0, timeout_seconds=3600)


@dataclass
class MeshFleet:
    servers: Servers
    mesh: Mesh
    workers: list[Proc]
    network_id: UUID

    def submit(self, count: int, network_id: UUID | None = None) -> list[UUID]:
        tasks = self.mesh.tenant(self.mesh.settings.tenant).tasks
        return [
            tasks.submit(
                network_id or self.network_id,
                description=f"Write the launch email for Mesh, variant {i}",
                context={"segment": "developers"},
                priority=Priority.NORMAL,
            ).id
            for i in range(count)
        ]

    def wait(self, ids: list[UUID], timeout: float = 300, poll_s: float = 0.05) -> float:
        """Wait until every task has ended; answer the wall time the wait took. A run where
        no step is recorded for STALL_S has stalled (the bench runs no sweeper to re-drive
        it); steps, not endings, because a burst may end no task until most of it is done."""
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        ended, progress_at = -1, time.monotonic()
        with psycopg.connect(self.servers.psycopg_url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    """SELECT (SELECT count(*) FROM tasks WHERE id = ANY(%s) AND status = ANY(%s)),
                              (SELECT count(*) FROM steps WHERE task_id = ANY(%s))""",
                    (ids, list(TERMINAL), ids),
                ).fetchone()
                now_ended, recorded = row if row else (0, 0)
                if now_ended == len(ids):
                    return time.perf_counter() - started
                if recorded != ended:
                    ended, progress_at = recorded, time.monotonic()
                if time.monotonic() > deadline or time.monotonic() - progress_at > STALL_S:
                    raise RuntimeError(
                        f"{now_ended} of {len(ids)} tasks ended; stalled or out of time"
                        f" (see {processes.LOGS})"
                    )
                for w in self.workers:
                    processes.fail_if_exited(w)
                time.sleep(poll_s)

    def outcomes(self, ids: list[UUID]) -> tuple[list[float], int]:
        """Each task's created-to-ended time in ms (server side), and how many did not complete."""
        with psycopg.connect(self.servers.psycopg_url, autocommit=True) as conn:
            rows = conn.execute(
                """SELECT t.status, EXTRACT(EPOCH FROM max(e.at) - t.created_at) * 1000
                     FROM tasks t JOIN task_events e ON e.task_id = t.id
                    WHERE t.id = ANY(%s) AND e.kind = 'transition' AND e.status = t.status
                    GROUP BY t.id, t.status, t.created_at""",
                (ids,),
            ).fetchall()
        return [float(ms) for _, ms in rows], sum(1 for status, _ in rows if status != "completed")

    def step_latencies(self, ids: list[UUID]) -> dict[str, float]:
        """The model-call time of each step kind, averaged: the ideal a run is held to."""
        with psycopg.connect(self.servers.psycopg_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT key, avg(latency_ms) FROM steps WHERE task_id = ANY(%s) GROUP BY key",
                (ids,),
            ).fetchall()
        return {key: float(ms) for key, ms in rows}


@contextmanager
def mesh_fleet(
    servers: Servers, specs: list[WorkerSpec], *, latency_ms: int = 0
) -> Iterator[MeshFleet]:
    env = processes.mesh_env(servers, latency_ms=latency_ms)
    settings = processes.settings(servers)
    app = create_celery(settings)
    mesh = bootstrap.build(settings, app)
    argvs = [(s.hostname, processes.mesh_worker_argv(s)) for s in specs]
    try:
        with processes.workers(argvs, env, app) as procs:
            network = mesh.tenant(settings.tenant).networks.create(
                name=f"bench-{uuid4().hex[:8]}", description="benchmark", config=ONE_PASS
            )
            fleet = MeshFleet(servers, mesh, procs, network.id)
            # The first task loads litellm's lazy parts in every worker thread that runs it.
            fleet.wait(fleet.submit(4), timeout=120)
            yield fleet
    finally:
        mesh.close()
