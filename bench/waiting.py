"""Clients that wait: the long poll, the event stream and the conditional GET against the old
way (a plain GET every 20 ms), on the fleet and the API as `mesh serve` runs them (gevent
workers; zero-latency offline model), in one run.

1. Clients as they really wait: each submits a task and waits for it, 32 at once.
2. Wake: how soon a long poll answers once its task changes (a held task, cancelled).
3. Conditional GET: the API's CPU and latency for a full GET, a summary and a 304.
4. A crowd: plain GETs at a fixed rate while 500 event streams and 500 long polls wait.

The clients are asyncio HTTP/1.1 on loopback (bench.waiters, bench.crowd) in this process;
the API's CPU is read from its processes before and after (psutil).
"""

from __future__ import annotations

import asyncio

import httpx

from bench import processes
from bench.api_load import _address, read_cost
from bench.crowd import Crowd, idle_cores, reads_alone, reads_in_crowd
from bench.orchestration import AGENTS_C, COORDINATOR_C
from bench.processes import Proc
from bench.report import Figure, median, percentile, publish
from bench.session import Session
from bench.waiters import Clients, Wake, wait_for_tasks, wake_latencies

IN_FLIGHT, POLL_EVERY_S = 32, 0.02
COST_RATE, COST_CONNECTIONS = 100, 64
READ_RATE, STREAMS, LONG_POLLS, HELD_TASKS = 100, 500, 500, 10
OLD_WAY = "baseline: plain GET every 20 ms"


def run(session: Session) -> list[Figure]:
    quick = session.quick
    fleet = session.fleet(processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C))
    api, base = session.api()
    address, auth = _address(base), session.auth()
    network = session.network(fleet)
    tasks_path = f"/api/mesh/networks/{network}/tasks"
    done = fleet.submit(10, network)
    fleet.wait(done)
    paths = [f"{tasks_path}/{i}" for i in done]  # completed tasks, to GET

    # Each part starts on a quiet API: an earlier suite's load (10,000 users) can leave
    # gunicorn a backlog of requests whose clients have gone.
    api.settle()
    tasks = 60 if quick else 200
    ways = clients_as_they_wait(api, address, auth, tasks_path, tasks)
    api.settle()
    wakes = {
        way: asyncio.run(wake_latencies(
            address, auth, tasks_path, way=way, samples=20 if quick else 50,
        ))
        for way in ("long poll", "poll")
    }  # fmt: skip
    api.settle()
    costs = conditional_costs(api, address, auth, paths, 1.5 if quick else 5)
    read_spec = {
        "host": address[0], "port": address[1], "headers": auth, "connections": 16,
        "rate": READ_RATE, "duration": 2 if quick else 5,
        "requests": [{"kind": "get", "method": "GET", "path": p} for p in paths],
    }  # fmt: skip
    alone = asyncio.run(reads_alone(api, read_spec))
    idle = {"rss_mb": api.rss_mb(), "cores": asyncio.run(idle_cores(api))}
    crowd = asyncio.run(reads_in_crowd(
        api, address, auth, tasks_path, held=HELD_TASKS, streams=STREAMS, polls=LONG_POLLS,
        read_spec=read_spec,
    ))  # fmt: skip
    for clients, _ in ways.values():
        _show(clients.errors)
    _show(crowd.errors)
    return [
        *client_figures(ways, tasks),
        *wake_figures(wakes),
        *cost_figures(costs),
        *crowd_figures(crowd, alone, idle),
    ]


def clients_as_they_wait(
    api: Proc, address: tuple[str, int], auth: dict[str, str], tasks_path: str, tasks: int
) -> dict[str, tuple[Clients, float]]:
    """IN_FLIGHT clients waiting for `tasks` tasks each way, one way after the other: what
    they saw, and the API's CPU per task in ms."""
    # A few clients first, not counted: the API's workers open their connections.
    asyncio.run(wait_for_tasks(address, auth, tasks_path, way="long poll", tasks=8, in_flight=8))
    ways = {}
    for way in ("poll", "long poll", "stream"):
        cpu = api.cpu_seconds()
        clients = asyncio.run(wait_for_tasks(
            address, auth, tasks_path, way=way, tasks=tasks, in_flight=IN_FLIGHT,
            every_s=POLL_EVERY_S,
        ))  # fmt: skip
        ways[way] = (clients, (api.cpu_seconds() - cpu) / tasks * 1000)
    return ways


def _show(errors: list[str]) -> None:
    for error in errors[:10]:
        print(f"  ! {error}", flush=True)
    if len(errors) > 10:
        print(f"  ! ... and {len(errors) - 10} more", flush=True)


def conditional_costs(
    api: Proc, address: tuple[str, int], auth: dict[str, str], paths: list[str],
    seconds: float,
) -> dict[str, dict]:  # fmt: skip
    """For a full GET, a summary and a conditional GET answered 304: the latency at
    COST_RATE, then the API's CPU per request answered, saturated."""
    with httpx.Client(base_url=f"http://{address[0]}:{address[1]}", headers=auth) as client:
        etags = [client.get(p).headers["etag"] for p in paths]
    kinds = {
        "full": [{"path": p} for p in paths],
        "summary": [{"path": f"{p}?view=summary"} for p in paths],
        "304": [
            {"path": p, "headers": {"If-None-Match": tag}}
            for p, tag in zip(paths, etags, strict=True)
        ],
    }
    return {
        kind: read_cost(address, requests, seconds=seconds, rate=COST_RATE,
                        connections=COST_CONNECTIONS, cpu_seconds=api.cpu_seconds,
                        headers=auth)
        for kind, requests in kinds.items()
    }


def client_figures(ways: dict[str, tuple[Clients, float]], tasks: int) -> list[Figure]:
    poll, poll_cpu = ways["poll"]
    figures = []
    ways_named = (("long poll", "long poll (wait=30, summary, until=ended)"),
                  ("stream", "event stream"))  # fmt: skip
    for way, what in ways_named:
        clients, cpu_ms = ways[way]
        figures += [
            Figure(f"{what}: tasks/s, {tasks} tasks, {IN_FLIGHT} in flight",
                   _rate(clients), _rate(poll), "tasks/s", OLD_WAY),
            Figure(f"{what}: task p50, submit to result", _q(clients, 0.5), _q(poll, 0.5),
                   "ms", OLD_WAY),
            Figure(f"{what}: task p95, submit to result", _q(clients, 0.95), _q(poll, 0.95),
                   "ms", OLD_WAY),
            Figure(f"{what}: requests per task", _per_task(clients), _per_task(poll),
                   "requests", f"{OLD_WAY}; the submit included"),
            Figure(f"{what}: API CPU per task", cpu_ms, poll_cpu, "ms",
                   f"{OLD_WAY}; the submit included"),
        ]  # fmt: skip
    errors = sum(len(c.errors) + c.not_completed for c, _ in ways.values())
    figures.append(Figure("waiting clients: tasks not completed or errors (3 ways)", errors,
                          3 * tasks, "tasks", "baseline: tasks waited for", "= 0",
                          errors == 0))  # fmt: skip
    return figures


def _per_task(clients: Clients) -> float:
    return clients.requests / max(len(clients.latencies_ms), 1)


def _rate(clients: Clients) -> float:
    return len(clients.latencies_ms) / clients.seconds if clients.seconds else 0.0


def _q(clients: Clients, q: float) -> float:
    return percentile(clients.latencies_ms, q) if clients.latencies_ms else 0.0


def wake_figures(wakes: dict[str, list[Wake]]) -> list[Figure]:
    """From the change's answer (as the issue asks; below 0 when the long poll answered
    first, since the cancel answers with the whole task), and from the time the change was
    recorded (its event's `at`, on the same clock): the wake itself, commit included."""
    after = [w.after_answer_ms for w in wakes["long poll"]]
    old = [w.after_answer_ms for w in wakes["poll"]]
    recorded = [w.after_record_ms for w in wakes["long poll"]]
    old_recorded = [w.after_record_ms for w in wakes["poll"]]
    note = f"baseline: plain GET every 20 ms; {len(after)} held tasks, each cancelled"
    return [
        Figure("long poll wake, change answered to poll answered, median", median(after),
               median(old), "ms", f"{note}; < 0: the poll answered first"),
        Figure("long poll wake, change answered to poll answered, p95",
               percentile(after, 0.95), percentile(old, 0.95), "ms", note, "< 50",
               percentile(after, 0.95) < 50),
        Figure("long poll wake, change answered to poll answered, max", max(after), max(old),
               "ms", note, "< 50", max(after) < 50),
        Figure("long poll wake, change recorded to poll answered, median", median(recorded),
               median(old_recorded), "ms", note),
        Figure("long poll wake, change recorded to poll answered, max", max(recorded),
               max(old_recorded), "ms", note, "< 50", max(recorded) < 50),
    ]  # fmt: skip


def cost_figures(costs: dict[str, dict]) -> list[Figure]:
    cond, full, summary = costs["304"], costs["full"], costs["summary"]
    note = "baseline: conditional GET answered 304 (If-None-Match)"
    ratio = full["cpu_us"] / cond["cpu_us"] if cond["cpu_us"] else 0.0
    not_304 = sum(n for status, n in cond["rate"]["statuses"].items() if str(status) != "304")
    not_304 += sum(n for status, n in cond["sat"]["statuses"].items() if str(status) != "304")
    return [
        Figure("full GET task: API CPU per request", full["cpu_us"], cond["cpu_us"], "us",
               f"{note}; saturated", "ratio >= 5", ratio >= 5),
        Figure("view=summary GET: API CPU per request", summary["cpu_us"], cond["cpu_us"],
               "us", f"{note}; saturated"),
        Figure(f"full GET task: p50 at {COST_RATE} req/s", full["rate"]["p50_ms"],
               cond["rate"]["p50_ms"], "ms", note),
        Figure(f"view=summary GET: p50 at {COST_RATE} req/s", summary["rate"]["p50_ms"],
               cond["rate"]["p50_ms"], "ms", note),
        Figure(f"full GET task: p99 at {COST_RATE} req/s", full["rate"]["p99_ms"],
               cond["rate"]["p99_ms"], "ms", note),
        Figure(f"full GET task: answered per second, saturated ({COST_CONNECTIONS} conns)",
               full["sat"]["rps"], cond["sat"]["rps"], "req/s", note),
        Figure("conditional GETs not answered 304", not_304,
               cond["rate"]["attempted"] + cond["sat"]["attempted"], "requests",
               "baseline: conditional GETs sent", "= 0", not_304 == 0),
    ]  # fmt: skip


def crowd_figures(crowd: Crowd, alone: dict, idle: dict[str, float]) -> list[Figure]:
    reads = crowd.reads
    waiting = STREAMS + LONG_POLLS
    answered = sum(crowd.answered.values())
    note = "baseline: the same GETs, no client waiting"
    return [
        Figure(f"GET task p50 at {READ_RATE} req/s, {waiting:,} clients waiting",
               reads["p50_ms"], alone["p50_ms"], "ms", note),
        Figure(f"GET task p99 at {READ_RATE} req/s, {waiting:,} clients waiting",
               reads["p99_ms"], alone["p99_ms"], "ms", note, "< 50", reads["p99_ms"] < 50),
        Figure(f"GET errors at {READ_RATE} req/s, {waiting:,} clients waiting", reads["errors"],
               reads["attempted"], "requests", "baseline: GETs sent", "= 0",
               reads["errors"] == 0),
        Figure("waiting clients answered when their task ended", answered, waiting, "clients",
               f"baseline: clients waiting ({STREAMS} streams, {LONG_POLLS} long polls on "
               f"{HELD_TASKS} held tasks)", f"= {waiting}", answered == waiting),
        Figure(f"API CPU with {waiting:,} clients waiting, no other request",
               crowd.idle_cores, idle["cores"], "cores", "baseline: the API idle, no client"),
        Figure(f"API RSS with {waiting:,} clients waiting", crowd.rss_mb, idle["rss_mb"], "MiB",
               "baseline: the API before they came"),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish("clients that wait (long poll, events, 304; gevent API)", run(session))
