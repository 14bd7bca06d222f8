"""The fleet as `mesh serve` starts it: one process tree, its default settings, its real
servers (the bench's Postgres database and Redis database), and what it costs.

Everything a user runs is here: the API (gunicorn, gevent workers), the coordinator worker
(with beat), the agents workers. Only the servers and the model are the bench's: the
offline model with zero latency, since no provider can be reached.

`Costs` reads what a stretch of load cost the whole box: the CPU of the fleet's processes,
of Postgres' processes and of the Redis server, and the commands Redis ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg
import redis

from bench import mesh_fleet, processes
from bench.processes import Proc, Servers

# What `mesh serve` needs from the bench beyond its defaults: the servers, the offline model
# (no provider can be reached) and the key secret the bench's keys are made under.
SERVED_ENV_KEEP = (
    "MESH_DATABASE_URL", "MESH_REDIS_URL", "MESH_API_KEY_SECRET", "MESH_DATA_KEYS",
    "MESH_OFFLINE_LATENCY_MS", "MESH_ALLOW_OFFLINE_MODEL", "MESH_MODEL_CHAIN",
)  # fmt: skip


# The bench's one-pass network (mesh_fleet.ONE_PASS), as the REST API takes it.
ONE_PASS = {
    "max_iterations": mesh_fleet.ONE_PASS.max_iterations,
    "quality_threshold": mesh_fleet.ONE_PASS.quality_threshold,
    "timeout_seconds": mesh_fleet.ONE_PASS.timeout_seconds,
}


# The targets for each role's proportional set size at idle, in MiB.
PSS_TARGETS = {"api": 150.0, "agents": 200.0, "coordinator": 200.0}


def pss_target(role: str) -> float | None:
    """The idle PSS target of a role as memory_by_role names it (agents1, agents2: agents)."""
    return PSS_TARGETS.get("agents" if role.startswith("agents") else role)


def served_env(servers: Servers, data_dir: Path, *, latency_ms: int = 0) -> dict[str, str]:
    base = processes.mesh_env(servers, latency_ms=latency_ms)
    env = {k: v for k, v in base.items() if not k.startswith("MESH_") or k in SERVED_ENV_KEEP}
    env["MESH_DATA_DIR"] = str(data_dir)
    return env


@dataclass
class Served:
    proc: Proc
    base: str
    port: int

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def api_cpu_seconds(self) -> float:
        """CPU seconds the API's processes (gunicorn's master and workers) have used."""
        return sum(seconds for role, seconds in self.cpu_by_process() if role == "api")

    def cpu_by_process(self) -> Iterator[tuple[str, float]]:
        for p in self.tree():
            try:
                t = p.cpu_times()
                yield _role(p.cmdline()), t.user + t.system
            except psutil.NoSuchProcess:
                continue

    def memory_by_role(self) -> dict[str, float]:
        """Proportional set size (PSS) in MiB of each role: the API (its master and workers),
        each worker (with the beat process the coordinator forks). PSS, not RSS: a forked
        child shares its parent's pages, and RSS would count them once per process."""
        found: dict[str, float] = {}
        for p in self.tree():
            try:
                role = _role(p.cmdline())
                found[role] = found.get(role, 0.0) + p.memory_full_info().pss / 2**20
            except psutil.NoSuchProcess:
                continue
        return found


def _role(cmdline: list[str]) -> str:
    line = " ".join(cmdline)
    if "gunicorn" in line:
        return "api"
    if "--hostname" in cmdline:
        return cmdline[cmdline.index("--hostname") + 1].split("@")[0]
    if "meshcli.zygote" in line:
        return "zygote"
    if " serve" in line:
        return "mesh serve"
    return "other"


@contextmanager
def served(servers: Servers, *, latency_ms: int = 0) -> Iterator[Served]:
    """`mesh serve` on the bench's servers, up and answering, stopped as a user stops it.

    It starts on an empty Redis database, as a newcomer's does: what an earlier suite left
    queued (steps of tasks that timed out under overload) would count against admission."""
    processes.flush_queues(servers)
    port = processes.free_port()
    with tempfile.TemporaryDirectory(prefix="mesh-served-") as data:
        env = served_env(servers, Path(data), latency_ms=latency_ms)
        argv = [sys.executable, "-m", "meshcli.main", "serve", "--port", str(port)]
        with processes.started("mesh-serve", argv, env) as proc:
            base = f"http://127.0.0.1:{port}"
            processes._wait_http(proc, f"{base}/healthz", timeout=120)
            yield Served(proc, base, port)
            proc.popen.send_signal(subprocess.signal.SIGTERM)  # type: ignore[attr-defined]
            proc.popen.wait(timeout=30)


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    commands: dict[str, int]
    database: dict[str, int] = field(default_factory=dict)


class Costs:
    """CPU seconds by role (the fleet's processes, Postgres, Redis) and Redis commands."""

    def __init__(self, fleet: Served, servers: Servers) -> None:
        self.fleet, self.servers = fleet, servers
        self.redis = redis.Redis.from_url(servers.mesh_redis)

    def snapshot(self) -> Snapshot:
        cpu: dict[str, float] = {}
        for role, seconds in self.fleet.cpu_by_process():
            role = "agents" if role.startswith("agents") else role
            cpu[role] = cpu.get(role, 0.0) + seconds
        cpu["postgres"] = _postgres_cpu()
        info = self.redis.info("cpu")
        cpu["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        stats = self.redis.info("commandstats")
        commands = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        with psycopg.connect(self.servers.psycopg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted"
                " FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        names = ("commits", "rollbacks", "inserted", "updated", "deleted")
        database = dict(zip(names, row or (0,) * len(names), strict=True))
        return Snapshot(time.monotonic(), cpu, commands, database)


def _postgres_cpu() -> float:
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ("postgres", "postmaster"):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                continue
    return total


def per_task(before: Snapshot, after: Snapshot, tasks: int) -> dict[str, dict[str, float]]:
    cpu = {k: (after.cpu.get(k, 0.0) - v) * 1000 / tasks for k, v in before.cpu.items()}
    cpu["total"] = sum(cpu.values())
    commands = {
        k: (v - before.commands.get(k, 0)) / tasks
        for k, v in after.commands.items()
        if v - before.commands.get(k, 0) > 0
    }
    database = {k: (v - before.database.get(k, 0)) / tasks for k, v in after.database.items()}
    return {"cpu_ms": cpu, "redis": commands, "database": database}


def api_key(servers: Servers) -> str:
    return processes.create_api_key(servers)


def network(base: str, auth: dict[str, str], config: dict | None = None) -> str:
    body = {"name": f"bench-{os.urandom(4).hex()}", "description": "benchmark"}
    if config:
        body["config"] = config
    answer = httpx.post(f"{base}/api/mesh/networks", json=body, headers=auth, timeout=30)
    answer.raise_for_status()
    return answer.json()["id"]


def bare_costs(servers: Servers, procs: list[Proc]) -> Snapshot:
    """The same accounting for the bare pipeline's workers (its own Redis database)."""
    cpu = {"workers": sum(p.cpu_seconds() for p in procs), "postgres": _postgres_cpu()}
    client = redis.Redis.from_url(servers.bare_redis)
    info = client.info("cpu")
    cpu["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    stats = client.info("commandstats")
    commands = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    return Snapshot(time.monotonic(), cpu, commands)


def tenant_keys(servers: Servers, count: int, prefix: str) -> list[str]:
    """A read and write key for each of `count` tenants, made as `mesh keys create` makes them."""
    from meshcore import bootstrap
    from meshcore.domain.keys import Scope
    from meshworkers.app import create_celery

    settings = processes.settings(servers)
    mesh = bootstrap.build(settings, create_celery(settings))
    try:
        return [
            mesh.keys.create(tenant_id=f"{prefix}{i}", scopes={Scope.READ, Scope.WRITE},
                             name="bench")[1]
            for i in range(count)
        ]  # fmt: skip
    finally:
        mesh.close()


def run_task(base: str, auth: dict[str, str], tasks_path: str) -> tuple[str, str]:
    """Submit a task and wait for its end as the Python client does; its path and ETag."""
    with httpx.Client(base_url=base, headers=auth, timeout=90) as client:
        answer = client.post(tasks_path, json={"description": "Write the launch email"})
        answer.raise_for_status()
        path, summary = answer.headers["location"], answer.json()
        while summary["status"] not in ("completed", "failed", "cancelled", "timed_out"):
            waited = client.get(
                f"{path}?wait=30&view=summary&until=ended",
                headers={"If-None-Match": f'"{summary["revision"]}"'},
            )
            if waited.status_code == 200:
                summary = waited.json()
        return httpx.URL(path).path, f'"{summary["revision"]}"'


def unfinished(servers: Servers, paths: list[str]) -> int:
    """How many of the tasks at `paths` have not ended (a task with no row counts: lost)."""
    ids = sorted({p.rstrip("/").rsplit("/", 1)[1] for p in paths})
    if not ids:
        return 0
    with psycopg.connect(servers.psycopg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tasks WHERE id = ANY(%s::uuid[])"
            " AND status IN ('completed', 'failed', 'cancelled', 'timed_out')",
            (ids,),
        ).fetchone()
    return len(ids) - (int(row[0]) if row else 0)


def drained(servers: Servers, paths: list[str], timeout: float) -> tuple[float, int]:
    """Wait until every task at `paths` has ended: the seconds it took, and how many had not
    ended when `timeout` ran out (0: none lost)."""
    started = time.monotonic()
    while (left := unfinished(servers, paths)) and time.monotonic() - started < timeout:
        time.sleep(1)
    return time.monotonic() - started, left
