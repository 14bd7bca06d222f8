"""What Mesh's orchestration costs over a bare Celery pipeline of the same shape.

Zero-latency model, one pass per task (plan, 5 specialists in parallel, synthesis, critic).
Both run on the same worker layout (a coordinator worker and an agents worker, threads pool)
one after the other in this run. Then a single task over REST, as a client sees it.
"""

from __future__ import annotations

import time
from datetime import datetime

import httpx

from bench import bare_pipeline, processes
from bench.processes import Servers, WorkerSpec
from bench.report import Figure, median, percentile, publish
from bench.session import Session

# mesh serve's layout: a coordinator worker -c8, an agents worker at MESH_WORKER_CONCURRENCY.
COORDINATOR_C, AGENTS_C = 8, 32


def bare_specs() -> list[WorkerSpec]:
    return processes.layout("bare-", COORDINATOR_C, AGENTS_C)


def measure_bare(servers: Servers, sequential: int, concurrent: int, step_ms: int = 0) -> dict:
    """Single-pipeline latencies one at a time, then `concurrent` pipelines at once."""
    bare_pipeline.create_table(servers.psycopg_url)
    specs = bare_specs()
    env = bare_env(servers)
    argvs = [(s.hostname, processes.bare_worker_argv(s)) for s in specs]
    with processes.workers(argvs, env, bare_pipeline.app):
        bare_pipeline.run(10, step_ms)  # warm-up: connections, imports
        single = [bare_pipeline.run(1, step_ms)[1][0] for _ in range(sequential)]
        wall, latencies = bare_pipeline.run(concurrent, step_ms)
    return {"single": single, "wall": wall, "latencies": latencies}


def bare_env(servers: Servers) -> dict[str, str]:
    env = processes.mesh_env(servers)
    env.update(BENCH_BARE_REDIS_URL=servers.bare_redis, BENCH_BARE_DATABASE_URL=servers.psycopg_url)
    return env


def measure_mesh(
    session: Session, sequential: int, concurrent: int, specs: list[WorkerSpec], latency_ms: int = 0
) -> dict:
    fleet = session.fleet(specs, latency_ms)
    network = session.network(fleet)
    single = []
    for _ in range(sequential):
        ids = fleet.submit(1, network)
        fleet.wait(ids, poll_s=0.005)
        single.extend(fleet.outcomes(ids)[0])
    started = time.perf_counter()
    ids = fleet.submit(concurrent, network)
    fleet.wait(ids, timeout=600)
    wall = time.perf_counter() - started
    latencies, not_completed = fleet.outcomes(ids)
    steps = fleet.step_latencies(ids)
    return {
        "single": single, "wall": wall, "latencies": latencies,
        "not_completed": not_completed, "steps": steps,
    }  # fmt: skip


def measure_rest(session: Session, samples: int) -> tuple[list[float], list[float]]:
    """Submit over REST and poll until completed: the client's time and the server's."""
    fleet = session.fleet(processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C))
    _, base = session.api()
    client_ms, server_ms = [], []
    with httpx.Client(base_url=base, headers=session.auth(), timeout=10) as client:
        path = f"/api/mesh/networks/{session.network(fleet)}/tasks"
        for i in range(samples + 2):
            started = time.perf_counter()
            response = client.post(path, json={"description": "Write the launch email"})
            response.raise_for_status()
            location = response.headers["Location"]
            while (task := client.get(location).json())["status"] not in ("completed", "failed"):
                time.sleep(0.005)
            if i < 2:
                continue  # warm-up of the API's workers
            client_ms.append((time.perf_counter() - started) * 1000)
            server_ms.append(_created_to_ended_ms(task))
    return client_ms, server_ms


def _created_to_ended_ms(task: dict) -> float:
    ended = max(datetime.fromisoformat(h["at"]) for h in task["history"])
    return (ended - datetime.fromisoformat(task["created_at"])).total_seconds() * 1000


def run(session: Session) -> list[Figure]:
    sequential, concurrent = (3, 20) if session.quick else (20, 200)
    session.stop_fleet()  # the bare workers get the cores to themselves
    bare = measure_bare(session.servers, sequential, concurrent)
    specs = processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C)
    mesh = measure_mesh(session, sequential, concurrent, specs)
    client_ms, server_ms = measure_rest(session, 5 if session.quick else 10)
    bare_tps, mesh_tps = concurrent / bare["wall"], concurrent / mesh["wall"]
    ratio = mesh_tps / bare_tps
    single_ratio = median(mesh["single"]) / median(bare["single"])
    layout = f"coordinator -c{COORDINATOR_C}, {len(specs) - 1} x agents -c{AGENTS_C}, threads"
    return [
        Figure(
            f"throughput, {concurrent} tasks at once", mesh_tps, bare_tps, "tasks/s",
            f"baseline: bare Celery pipeline, {layout}", "ratio >= 0.70", ratio >= 0.70,
        ),
        Figure(
            "single task, median created-to-completed", median(mesh["single"]),
            median(bare["single"]), "ms", "baseline: bare pipeline, one at a time",
            "ratio <= 2.0", single_ratio <= 2.0,
        ),
        Figure(
            "single task, p99 created-to-completed", percentile(mesh["single"], 0.99),
            percentile(bare["single"], 0.99), "ms", "baseline: bare pipeline",
        ),
        Figure(
            f"task latency under load, p50 ({concurrent} at once)", median(mesh["latencies"]),
            median(bare["latencies"]), "ms", "baseline: bare pipeline",
        ),
        Figure(
            f"task latency under load, p99 ({concurrent} at once)",
            percentile(mesh["latencies"], 0.99), percentile(bare["latencies"], 0.99), "ms",
            "baseline: bare pipeline",
        ),
        Figure(
            "tasks not completed", mesh["not_completed"], concurrent, "tasks",
            f"of {concurrent}", "= 0", mesh["not_completed"] == 0,
        ),
        Figure(
            "REST single task, median submit-to-completed (client)", median(client_ms),
            median(bare["single"]), "ms", "baseline: bare pipeline; poll every 5 ms",
            "< 100", median(client_ms) < 100,
        ),
        Figure(
            "REST single task, median created-to-completed (server)", median(server_ms),
            median(bare["single"]), "ms", "baseline: bare pipeline", "< 100",
            median(server_ms) < 100,
        ),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish("orchestration (zero-latency model)", run(session))
