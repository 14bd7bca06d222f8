"""The API under load: Mesh's submit and poll endpoints against a bare Flask app, each under
gunicorn with 2 workers (Mesh's gevent ones as `mesh serve` runs them, the bare app's gthread
x 8), loaded from a second process (bench.loadgen) at a fixed rate and at saturation. No
workers run here: POSTed tasks wait in Redis, so only the API is measured. Every request to
Mesh carries a real API key; the price of checking it is the same GET against Mesh with the
check skipped (bench.noauth_api, which no deployment runs, served the same way), in the same
run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench import bare_api, processes
from bench.loadgen import drive
from bench.orchestration import AGENTS_C, COORDINATOR_C, bare_env
from bench.processes import Proc
from bench.report import Figure, publish
from bench.session import Session
from meshcore import bootstrap
from meshworkers.app import create_celery

GET_RATE, POST_RATE, CONNECTIONS = 500, 200, 256
# Well below what either API answers, so the latency compared is a GET's, not a queue's.
AUTH_RATE = 100
MESH_APP, NO_KEY_CHECK_APP = "meshapi.app:create_app()", "bench.noauth_api:create_app()"
BARE_APP = "bench.bare_api:create_app()"
BODY = {"description": "Write the launch email for Mesh", "context": {"segment": "developers"}}


def loads(host_port: tuple[str, int], get_paths: list[str], post_path: str,
          seconds: float, headers: dict[str, str] | None = None) -> dict[str, dict]:  # fmt: skip
    host, port = host_port
    gets = [{"kind": "get", "method": "GET", "path": p} for p in get_paths]
    post = [{"kind": "post", "method": "POST", "path": post_path, "body": BODY}]
    common = {"host": host, "port": port, "duration": seconds, "headers": headers or {}}

    def at_rate(rate: int, requests: list[dict], kind: str) -> dict:
        # A second at the same rate first, not counted: the server's threads open their
        # database and broker connections, and the previous phase's backlog drains.
        spec = {**common, "mode": "rate", "rate": rate, "connections": 64, "requests": requests}
        drive({**spec, "duration": min(1.0, seconds / 4)})
        return drive(spec)["kinds"][kind]

    return {
        "get_rate": at_rate(GET_RATE, gets, "get"),
        "get_sat": drive({**common, "mode": "saturate", "connections": CONNECTIONS,
                          "requests": gets})["kinds"]["get"],
        "post_rate": at_rate(POST_RATE, post, "post"),
        "post_sat": drive({**common, "mode": "saturate", "connections": CONNECTIONS,
                           "requests": post})["kinds"]["post"],
    }  # fmt: skip


def _address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def completed_tasks(session: Session, count: int) -> tuple[str, list[str]]:
    """A network and `count` completed tasks, real poll targets with a history and subtasks."""
    fleet = session.fleet(processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C))
    network = session.network(fleet)
    ids = fleet.submit(count, network)
    fleet.wait(ids)
    return str(network), [f"/api/mesh/networks/{network}/tasks/{i}" for i in ids]


def run(session: Session) -> list[Figure]:
    seconds = 1.5 if session.quick else 8
    network, task_paths = completed_tasks(session, 10 if session.quick else 20)
    session.stop_fleet()  # the API alone on the cores
    ids = bare_api.seed(session.servers.psycopg_url, 1000)
    env = bare_env(session.servers)
    with processes.gunicorn("bare-api", BARE_APP, env, processes.BARE_SERVED) as (_, base):
        bare = loads(_address(base), [f"/items/{i}" for i in ids], "/items", seconds)
    _, base = session.api()
    post_path = f"/api/mesh/networks/{network}/tasks"
    mesh = loads(_address(base), task_paths, post_path, seconds, session.auth())
    processes.flush_queues(session.servers)
    # The key's price: two fresh APIs, one after the other, serving the same GETs; they
    # differ by the key check alone, and neither has served the load above.
    session.stop_api()
    env = processes.mesh_env(session.servers)
    with processes.gunicorn("keyed-api", MESH_APP, env) as (proc, keyed_base):
        keyed = get_cost(proc, keyed_base, task_paths, seconds, session.auth())
    with processes.gunicorn("noauth-api", NO_KEY_CHECK_APP, env) as (proc, skipped_base):
        skipped = get_cost(proc, skipped_base, task_paths, seconds, {})
    # The rate limit's price: the keyed API above counts every GET on Redis (mesh_env sets a
    # limit no load reaches); this one counts nothing.
    uncounted_env = {**env, "MESH_RATE_LIMIT": "none"}
    with processes.gunicorn("uncounted-api", MESH_APP, uncounted_env) as (proc, uncounted_base):
        uncounted = get_cost(proc, uncounted_base, task_paths, seconds, session.auth())
    check_us = authenticate_us(session)
    return [
        *figures(mesh, bare),
        *auth_figures(keyed, skipped, check_us),
        *rate_figures(keyed, uncounted),
    ]


def get_cost(api: Proc, base: str, paths: list[str], seconds: float,
             headers: dict[str, str]) -> dict:  # fmt: skip
    """The same GETs at AUTH_RATE, then saturated with the API's CPU per GET answered."""
    requests = [{"path": p} for p in paths]
    return read_cost(_address(base), requests, seconds=seconds, rate=AUTH_RATE,
                     connections=CONNECTIONS, cpu_seconds=api.cpu_seconds,
                     headers=headers)  # fmt: skip


def read_cost(
    address: tuple[str, int], requests: list[dict], *, seconds: float, rate: int,
    connections: int, cpu_seconds: Callable[[], float], headers: dict[str, str] | None = None,
) -> dict:  # fmt: skip
    """GETs (each a path and its own headers) at `rate` for their latency, then `connections`
    sending flat out for the API's CPU per answer: {"rate", "sat", "cpu_us"}."""
    spec = {"host": address[0], "port": address[1], "headers": headers or {},
            "duration": seconds,
            "requests": [{"kind": "get", "method": "GET", **r} for r in requests]}  # fmt: skip
    at_rate = {**spec, "mode": "rate", "rate": rate, "connections": 64}
    drive({**at_rate, "duration": 1.0})  # warm-up: the previous phase's backlog drains
    answered = drive(at_rate)["kinds"]["get"]
    cpu = cpu_seconds()
    sat = drive({**spec, "mode": "saturate", "connections": connections})["kinds"]["get"]
    cpu_us = (cpu_seconds() - cpu) / max(sat["count"], 1) * 1e6
    return {"rate": answered, "sat": sat, "cpu_us": cpu_us}


def authenticate_us(session: Session, calls: int = 5000) -> float:
    """The key check alone, in this process: KeyService.authenticate on a cached key, in µs."""
    s = processes.settings(session.servers)
    mesh = bootstrap.build(s, create_celery(s))
    try:
        key = session.api_key()
        mesh.keys.authenticate(key)  # the first call looks the key up in the record
        started = time.perf_counter()
        for _ in range(calls):
            mesh.keys.authenticate(key)
        return (time.perf_counter() - started) / calls * 1e6
    finally:
        mesh.close()


def auth_figures(keyed: dict, skipped: dict, check_us: float) -> list[Figure]:
    note = "baseline: the same GET, key check skipped (bench.noauth_api)"
    errors = keyed["rate"]["errors"] + keyed["sat"]["errors"]
    return [
        Figure("auth: API CPU per GET task, saturated", keyed["cpu_us"], skipped["cpu_us"],
               "us", note),
        Figure("auth: CPU added per GET by the key check", keyed["cpu_us"] - skipped["cpu_us"],
               skipped["cpu_us"], "us", "ratio: share of a GET without the check"),
        Figure("auth: KeyService.authenticate, cached key", check_us, skipped["cpu_us"], "us",
               "ratio: share of a GET's CPU without the check", "< 1000", check_us < 1000),
        Figure(f"auth: GET task p50 at {AUTH_RATE} req/s", keyed["rate"]["p50_ms"],
               skipped["rate"]["p50_ms"], "ms", note),
        Figure(f"auth: GET task p99 at {AUTH_RATE} req/s", keyed["rate"]["p99_ms"],
               skipped["rate"]["p99_ms"], "ms", note),
        Figure(f"auth: GET throughput, saturated ({CONNECTIONS} conns)", keyed["sat"]["rps"],
               skipped["sat"]["rps"], "req/s", note),
        Figure("auth: keyed GETs refused or failed", errors,
               keyed["rate"]["count"] + keyed["sat"]["count"], "requests",
               "baseline: keyed GETs answered", "= 0", errors == 0),
    ]  # fmt: skip


def rate_figures(counted: dict, uncounted: dict) -> list[Figure]:
    note = "baseline: the same keyed GET, MESH_RATE_LIMIT=none"
    return [
        Figure("rate limit: CPU added per GET (two Redis round trips)",
               counted["cpu_us"] - uncounted["cpu_us"], uncounted["cpu_us"], "us",
               "ratio: share of a GET without the count"),
        Figure(f"rate limit: GET task p50 at {AUTH_RATE} req/s", counted["rate"]["p50_ms"],
               uncounted["rate"]["p50_ms"], "ms", note),
        Figure(f"rate limit: GET throughput, saturated ({CONNECTIONS} conns)",
               counted["sat"]["rps"], uncounted["sat"]["rps"], "req/s", note),
    ]  # fmt: skip


def figures(mesh: dict, bare: dict) -> list[Figure]:
    gs, ps = mesh["get_sat"], mesh["post_sat"]
    return [
        *_method("GET", GET_RATE, 50, mesh["get_rate"], bare["get_rate"], gs, bare["get_sat"]),
        *_method("POST", POST_RATE, 100, mesh["post_rate"], bare["post_rate"], ps,
                 bare["post_sat"]),
        Figure("errors, saturated (GET + POST)", gs["errors"] + ps["errors"],
               gs["count"] + ps["count"], "requests", "baseline: requests answered"),
    ]  # fmt: skip


def _method(
    method: str, rate: int, p99_target: float, at_rate: dict, bare_rate: dict, sat: dict,
    bare_sat: dict,
) -> list[Figure]:
    """One method's figures: at a fixed rate (with its targets) and saturated."""
    note = "baseline: bare Flask+psycopg, gunicorn 2 gthread workers x 8"
    what = "GET task" if method == "GET" else "POST task"
    return [
        Figure(f"{what} p50 at {rate} req/s", at_rate["p50_ms"], bare_rate["p50_ms"], "ms", note),
        Figure(f"{what} p99 at {rate} req/s", at_rate["p99_ms"], bare_rate["p99_ms"], "ms", note,
               f"< {p99_target:g}", at_rate["p99_ms"] < p99_target),
        Figure(f"{method} errors at {rate} req/s", at_rate["errors"], at_rate["count"],
               "requests", "baseline: requests sent", "= 0", at_rate["errors"] == 0),
        Figure(f"{method} throughput, saturated ({CONNECTIONS} conns)", sat["rps"],
               bare_sat["rps"], "req/s", note),
        Figure(f"{method} p99, saturated ({CONNECTIONS} conns)", sat["p99_ms"],
               bare_sat["p99_ms"], "ms", note),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish("API under load (gunicorn, 2 gevent workers)", run(session))
