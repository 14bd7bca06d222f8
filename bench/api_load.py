"""The API under load: Mesh's submit and poll endpoints against a bare Flask app, both under
the same gunicorn, loaded from a second process (bench.loadgen) at a fixed rate and at
saturation. No workers run here: POSTed tasks wait in Redis, so only the API is measured.
"""

from __future__ import annotations

from bench import bare_api, processes
from bench.loadgen import drive
from bench.orchestration import AGENTS_C, COORDINATOR_C, bare_env
from bench.report import Figure, publish
from bench.session import Session

GET_RATE, POST_RATE, CONNECTIONS = 500, 200, 256
BODY = {"description": "Write the launch email for Mesh", "context": {"segment": "developers"}}


def loads(host_port: tuple[str, int], get_paths: list[str], post_path: str,
          seconds: float) -> dict[str, dict]:  # fmt: skip
    host, port = host_port
    gets = [{"kind": "get", "method": "GET", "path": p} for p in get_paths]
    post = [{"kind": "post", "method": "POST", "path": post_path, "body": BODY}]
    common = {"host": host, "port": port, "duration": seconds}

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
    with processes.gunicorn("bare-api", "bench.bare_api:create_app()", env) as (_, base):
        bare = loads(_address(base), [f"/items/{i}" for i in ids], "/items", seconds)
    _, base = session.api()
    mesh = loads(_address(base), task_paths, f"/api/mesh/networks/{network}/tasks", seconds)
    processes.flush_queues(session.servers)
    return figures(mesh, bare)


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
    note = "baseline: bare Flask+psycopg, same gunicorn"
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
    publish("API under load (gunicorn, 2 workers x 8 threads)", run(session))
