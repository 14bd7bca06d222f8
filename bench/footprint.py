"""Resident memory of the API and of the workers, at idle and under load.

RSS is summed over a process and its children (gunicorn's workers; Celery's main process
holds its threads). Idle figures are held to the bare equivalents (bench.bare_api, a bare
Celery worker of the same pool); under-load figures to the same process at idle.
"""

from __future__ import annotations

import time

from bench import bare_api, bare_pipeline, processes
from bench.api_load import BARE_APP, _address
from bench.loadgen import drive
from bench.orchestration import AGENTS_C, COORDINATOR_C, bare_env
from bench.processes import Proc, WorkerSpec
from bench.report import Figure, publish
from bench.sampling import Sampler
from bench.session import Session


class Peak(Sampler):
    """The highest RSS each process reaches while the block runs."""

    def __init__(self, procs: list[Proc]) -> None:
        super().__init__()
        self.procs, self.mb = procs, {p.name: 0.0 for p in procs}

    def sample(self) -> None:
        for p in self.procs:
            self.mb[p.name] = max(self.mb[p.name], p.rss_mb())


def bare_idle(session: Session) -> tuple[float, float]:
    env = bare_env(session.servers)
    bare_api.seed(session.servers.psycopg_url, 10)
    with processes.gunicorn("bare-api", BARE_APP, env, processes.BARE_SERVED) as (api, _):
        api_mb = api.rss_mb()
    spec = WorkerSpec("bare-agents@bench", list(processes.AGENT_QUEUES), AGENTS_C)
    with processes.workers([(spec.hostname, processes.bare_worker_argv(spec))], env,
                           bare_pipeline.app) as (worker,):  # fmt: skip
        time.sleep(1)
        worker_mb = worker.rss_mb()
    return api_mb, worker_mb


def run(session: Session) -> list[Figure]:
    bare_api_mb, bare_worker_mb = bare_idle(session)
    fleet = session.fleet(processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C))
    api, base = session.api()
    network = session.network(fleet)
    warm = fleet.submit(10, network)
    fleet.wait(warm)
    paths = [f"/api/mesh/networks/{network}/tasks/{i}" for i in warm]
    time.sleep(1)
    coordinator, agents = fleet.workers[:2]  # the coordinator and the first agents worker
    idle = {p.name: p.rss_mb() for p in (api, coordinator, agents)}
    host, port = _address(base)
    with Peak([api, coordinator, agents]) as peak:
        ids = fleet.submit(20 if session.quick else 100, network)
        drive({"mode": "saturate", "host": host, "port": port, "connections": 128,
               "headers": session.auth(),
               "duration": 2 if session.quick else 6,
               "requests": [{"kind": "get", "method": "GET", "path": p}
                            for p in paths]})  # fmt: skip
        fleet.wait(ids, timeout=600)
    return [
        Figure("API RSS at idle (2 gunicorn workers)", idle[api.name], bare_api_mb, "MiB",
               "baseline: bare Flask app, gunicorn 2 gthread workers x 8"),
        Figure("API RSS under load", peak.mb[api.name], idle[api.name], "MiB",
               "baseline: the API at idle"),
        Figure(f"agents worker RSS at idle (threads -c{AGENTS_C})", idle[agents.name],
               bare_worker_mb, "MiB", "baseline: bare Celery worker, same pool"),
        Figure("agents worker RSS under load", peak.mb[agents.name], idle[agents.name], "MiB",
               "baseline: the worker at idle"),
        Figure(f"coordinator worker RSS at idle (threads -c{COORDINATOR_C})",
               idle[coordinator.name], bare_worker_mb, "MiB", "baseline: bare Celery worker"),
        Figure("coordinator worker RSS under load", peak.mb[coordinator.name],
               idle[coordinator.name], "MiB", "baseline: the worker at idle"),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish("footprint (resident memory)", run(session))
