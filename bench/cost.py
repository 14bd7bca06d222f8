"""What a default task costs the whole box on the fleet `mesh serve` starts, with its clients
waiting as real ones do, against the bare Celery pipeline of the same shape in the same run.

1. The bare pipeline (bench.bare_pipeline) on mesh serve's worker layout: a single pipeline's
   latency, then 200 at once; the CPU of its workers, Postgres and Redis per pipeline.
2. `mesh serve` (bench.served) on the bench's servers, its defaults, the offline model at zero
   latency, one pass per task (the bare pipeline's shape). Clients submit over REST and wait:
   a single task at a time (the latency a user sees), then 200 tasks with 32 in flight, once
   by long poll (`until=ended`, as the Python client waits) and once by event stream.
   For the long-poll run: the CPU per task of every role (API, coordinator, agents workers,
   Postgres, Redis), Redis commands, Postgres transactions and Celery messages per task.
3. Memory of each role (proportional set size), idle after the load.
4. The hot read (bench.reads): a task GET at 500 req/s, and the API's CPU for a full GET, a
   summary and a 304.
"""

from __future__ import annotations

import asyncio
import time

from bench import bare_pipeline, processes, reads
from bench.api_load import _address
from bench.orchestration import bare_env, bare_specs
from bench.processes import Servers
from bench.report import Figure, median, publish
from bench.served import (
    ONE_PASS,
    Costs,
    api_key,
    bare_costs,
    network,
    per_task,
    pss_target,
    served,
)  # fmt: skip
from bench.session import Session
from bench.waiters import Clients, wait_for_tasks

IN_FLIGHT = 32
BARE = "baseline: bare Celery pipeline of the same shape"
TOP_COMMANDS = 8


def measure_bare(servers: Servers, singles: int, burst: int) -> dict:
    bare_pipeline.create_table(servers.psycopg_url)
    specs = bare_specs()
    argvs = [(s.hostname, processes.bare_worker_argv(s)) for s in specs]
    with processes.workers(argvs, bare_env(servers), bare_pipeline.app) as procs:
        bare_pipeline.run(10, 0)  # warm-up: connections, imports
        single = [bare_pipeline.run(1, 0)[1][0] for _ in range(singles)]
        before = bare_costs(servers, procs)
        wall, _ = bare_pipeline.run(burst, 0)
        after = bare_costs(servers, procs)
    cpu = {k: (after.cpu[k] - v) * 1000 / burst for k, v in before.cpu.items()}
    messages = (after.commands.get("lpush", 0) - before.commands.get("lpush", 0)) / burst
    return {"single": single, "rate": burst / wall, "cpu": cpu, "messages": messages}


def measure_served(servers: Servers, singles: int, tasks: int, quick: bool) -> dict:
    key = api_key(servers)
    auth = {"Authorization": f"Bearer {key}"}
    with served(servers) as fleet:
        path = f"/api/mesh/networks/{network(fleet.base, auth, ONE_PASS)}/tasks"
        address = _address(fleet.base)

        def clients(way: str, count: int, in_flight: int) -> Clients:
            return asyncio.run(wait_for_tasks(
                address, auth, path, way=way, tasks=count, in_flight=in_flight,
            ))  # fmt: skip

        clients("long poll", 16, 8)  # warm-up: every worker thread's first model call
        single = clients("long poll", singles, 1)
        costs = Costs(fleet, servers)
        costs.redis.config_resetstat()
        before = costs.snapshot()
        polled = clients("long poll", tasks, IN_FLIGHT)
        after = costs.snapshot()
        streamed = clients("stream", tasks, IN_FLIGHT)
        time.sleep(3)  # idle: what is left after the load
        memory = fleet.memory_by_role()
        hot_reads = reads.measure(fleet, servers, 3 if quick else 10)
    return {
        "single": single, "polled": polled, "streamed": streamed,
        "costs": per_task(before, after, tasks), "memory": memory, "reads": hot_reads,
    }  # fmt: skip


def figures(bare: dict, mesh: dict, tasks: int) -> list[Figure]:
    costs, bare_cpu = mesh["costs"], sum(bare["cpu"].values())
    cpu = costs["cpu_ms"]
    found = [
        Figure("CPU per default task, whole box", cpu["total"], bare_cpu, "ms",
               f"{BARE}; API, workers, Postgres and Redis summed", "<= 45",
               cpu["total"] <= 45),
    ]  # fmt: skip
    workers = cpu.get("coordinator", 0.0) + cpu.get("agents", 0.0)
    found.append(Figure("  CPU per task: workers (coordinator and agents)", workers,
                        bare["cpu"]["workers"], "ms", f"{BARE}: its workers"))  # fmt: skip
    for role in ("coordinator", "agents", "api"):
        found.append(Figure(f"  CPU per task: {role}", cpu.get(role, 0.0), cpu["total"], "ms",
                            "baseline: the whole box, for the share"))  # fmt: skip
    for role in ("postgres", "redis"):
        found.append(Figure(f"  CPU per task: {role}", cpu.get(role, 0.0), bare["cpu"][role],
                            "ms", f"{BARE}: the same server"))  # fmt: skip
    commands = costs["redis"]
    found.append(Figure("Redis commands per task", sum(commands.values()), 0.0, "commands",
                        ", ".join(f"{k} {v:.0f}" for k, v in sorted(
                            commands.items(), key=lambda kv: -kv[1])[:TOP_COMMANDS])))  # fmt: skip
    database = costs["database"]
    found.append(Figure("Postgres transactions per task",
                        database["commits"] + database["rollbacks"], 0.0, "transactions",
                        f"{database['commits']:.0f} commits, {database['rollbacks']:.0f} "
                        "rollbacks (read-only units of work)"))  # fmt: skip
    found.append(Figure("Celery messages per task", commands.get("lpush", 0.0),
                        bare["messages"], "messages", BARE))  # fmt: skip
    single, bare_single = median(mesh["single"].latencies_ms), median(bare["single"])
    found.append(Figure("single task over REST, submit to result, median", single, bare_single,
                        "ms", f"{BARE} (no HTTP); target ratio <= 4", "< 100",
                        single < 100))  # fmt: skip
    for way in ("polled", "streamed"):
        clients: Clients = mesh[way]
        rate = len(clients.latencies_ms) / clients.seconds if clients.seconds else 0.0
        what = "long poll (until=ended)" if way == "polled" else "event stream"
        found.append(Figure(f"{what}: tasks/s, {tasks} tasks, {IN_FLIGHT} in flight", rate,
                            bare["rate"], "tasks/s", f"{BARE}, {tasks} at once; ratio >= 0.30",
                            ">= 30", rate >= 30))  # fmt: skip
        errors = len(clients.errors) + clients.not_completed
        found.append(Figure(f"{what}: tasks not completed or errors", errors, tasks, "tasks",
                            "baseline: tasks waited for", "= 0", errors == 0))  # fmt: skip
    for role, mib in sorted(mesh["memory"].items()):
        limit = pss_target(role)
        found.append(Figure(f"memory at idle (PSS): {role}", mib, float(limit or 0), "MiB",
                            "baseline: the target" if limit else "",
                            f"<= {limit}" if limit else "",
                            mib <= limit if limit else None))  # fmt: skip
    return [*found, *reads.figures(mesh["reads"])]


def run(session: Session) -> list[Figure]:
    # The box to itself: no fleet or API of another suite runs beside these.
    session.stop_fleet()
    session.stop_api()
    singles, tasks = (10, 60) if session.quick else (20, 200)
    bare = measure_bare(session.servers, singles, tasks)
    mesh = measure_served(session.servers, singles, tasks, session.quick)
    for way in ("polled", "streamed"):
        for error in mesh[way].errors[:5]:
            print(f"  ! {way}: {error}", flush=True)
    return figures(bare, mesh, tasks)


def main(session: Session) -> None:
    publish("cost (the fleet mesh serve starts, clients waiting)", run(session))
