"""Fan-out efficiency: with every model call taking 200 ms, how close does Mesh get to ideal?

A task's wall time is held to its critical path (plan + slowest specialist + synthesis +
critic, from the model-call times its steps recorded). The throughput of many tasks at once is
held to the ideal the workers' concurrency sets: each task needs 2 coordinator calls and 6
agent calls of 200 ms, so at most min(C_coord / 0.4 s, C_agents / 1.2 s) tasks/s. The bare
pipeline with 200 ms steps on the same layout, in the same run, shows what Celery alone reaches.

Pool: threads. A model call waits on the network (here: sleeps) with the GIL released, so one
process keeps COORDINATOR_C + AGENTS_C calls in flight without a process per call; gevent
would need psycopg and redis made cooperative and measured 26-29% of ideal on this machine
against 96-97% for threads (issue #7).
"""

from __future__ import annotations

import time
from uuid import UUID

import psycopg
import redis

from bench import processes
from bench.orchestration import bare_env
from bench.processes import WorkerSpec
from bench.report import Figure, median, publish
from bench.sampling import Sampler
from bench.session import Session

LATENCY_MS = 200
# Calls in flight: 16 on the coordinator and 128 on the agents workers, shared among them.
# Each process holds at most 20 Postgres connections (MESH_DATABASE_POOL_SIZE + overflow)
# whatever its threads, well within the server's 100.
COORDINATOR_C, AGENTS_C = 16, 128


def specs(prefix: str = "") -> list[WorkerSpec]:
    return processes.layout(prefix, COORDINATOR_C, AGENTS_C // processes.agent_workers())


def ideal_tps() -> float:
    step_s = LATENCY_MS / 1000
    agent_slots = sum(s.concurrency for s in specs()[1:])
    return min(COORDINATOR_C / (2 * step_s), agent_slots / (6 * step_s))


def bare(session: Session, concurrent: int, singles: int) -> tuple[float, float]:
    """The bare pipeline's single wall time and its throughput of `concurrent` at once."""
    from bench import bare_pipeline

    bare_pipeline.create_table(session.servers.psycopg_url)
    argvs = [(s.hostname, processes.bare_worker_argv(s)) for s in specs("bare-")]
    with processes.workers(argvs, bare_env(session.servers), bare_pipeline.app):
        bare_pipeline.run(2, LATENCY_MS)
        single = median([bare_pipeline.run(1, LATENCY_MS)[1][0] for _ in range(singles)])
        wall, _ = bare_pipeline.run(concurrent, LATENCY_MS)
    return single, concurrent / wall


def critical_paths(session: Session, ids: list[UUID]) -> list[float]:
    with psycopg.connect(session.servers.psycopg_url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT task_id,
                      sum(latency_ms) FILTER (WHERE key LIKE '@%%'),
                      max(latency_ms) FILTER (WHERE key NOT LIKE '@%%')
                 FROM steps WHERE task_id = ANY(%s) GROUP BY task_id""",
            (ids,),
        ).fetchall()
    return [float(a) + float(b) for _, a, b in rows]


class InFlight(Sampler):
    """The peak of model calls in flight (the agents' leases in Redis) while a run goes."""

    interval = 0.1

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._redis, self.peak = redis.Redis.from_url(session.servers.mesh_redis), 0

    def sample(self) -> None:
        now = time.time()
        keys = list(self._redis.scan_iter(match="mesh:*:agent:*:calls", count=1000))
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.zcount(key, now, "+inf")
        self.peak = max(self.peak, sum(pipe.execute()))


def run(session: Session) -> list[Figure]:
    concurrent, singles = (20, 1) if session.quick else (500, 3)
    session.stop_fleet()
    session.stop_api()
    bare_single, bare_tps = bare(session, concurrent, singles)
    fleet = session.fleet(specs(), LATENCY_MS)
    network = session.network(fleet)
    walls, paths = [], []
    for _ in range(singles):
        ids = fleet.submit(1, network)
        fleet.wait(ids, poll_s=0.01)
        walls.extend(fleet.outcomes(ids)[0])
        paths.extend(critical_paths(session, ids))
    with InFlight(session) as in_flight:
        started = time.perf_counter()
        ids = fleet.submit(concurrent, network)
        fleet.wait(ids, timeout=900, poll_s=0.2)
        mesh_tps = concurrent / (time.perf_counter() - started)
    _, not_completed = fleet.outcomes(ids)
    session.stop_fleet()
    ideal = ideal_tps()
    layout = f"threads, coordinator -c{COORDINATOR_C}, agents -c{AGENTS_C} over {len(specs()) - 1}"
    wall, path = median(walls), median(paths)
    return [
        Figure("single task wall time vs its critical path", wall, path, "ms",
               f"critical path: 4 model calls of {LATENCY_MS} ms, as recorded"),
        Figure("bare pipeline wall time vs the same path", bare_single, 4 * LATENCY_MS, "ms",
               "baseline: 4 sleeps"),
        Figure(f"throughput, {concurrent} tasks at once", mesh_tps, ideal, "tasks/s",
               f"baseline: ideal by concurrency ({layout})"),
        Figure(f"bare pipeline throughput, {concurrent} at once", bare_tps, ideal, "tasks/s",
               "baseline: the same ideal"),
        Figure("Mesh throughput against the bare pipeline's", mesh_tps, bare_tps, "tasks/s",
               "same layout, same run"),
        Figure("model calls in flight, peak", in_flight.peak, COORDINATOR_C + AGENTS_C, "calls",
               "baseline: worker slots"),
        Figure("tasks not completed", not_completed, concurrent, "tasks", f"of {concurrent}",
               "= 0", not_completed == 0),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish(f"fan-out (model latency {LATENCY_MS} ms)", run(session))
