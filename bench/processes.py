"""The real processes a benchmark runs against: gunicorn, `mesh worker`, a bare Celery worker.

Every process is started in a session of its own, so that stopping it stops its children
(gunicorn's workers, Celery's pool) with it, whatever happens to the benchmark.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
import redis
from pydantic import SecretStr

from bench.report import RESULTS
from meshcore import bootstrap
from meshcore.domain.keys import Scope
from meshcore.domain.network import DEFAULT_TENANT
from meshcore.settings import Settings
from meshworkers.app import QUEUES, create_celery

LOGS = RESULTS / "logs"

PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")
AGENT_QUEUES = tuple(q for q in QUEUES if q != "coordinator")
# Mesh's API as `mesh serve` runs it: 2 workers, whose class (gevent, 2000 connections each)
# its config file chooses. No access log, unlike mesh serve's: a line per request costs more
# CPU than some requests do.
MESH_SERVED = ("--workers", "2", "--config", "python:meshapi.gunicorn_conf")
# The bare baseline keeps the shape it has always been measured in: it keeps one database
# connection per thread, which gevent's greenlets would turn into one per request.
BARE_SERVED = ("--workers", "2", "--worker-class", "gthread", "--threads", "8")
# The server secret every process the bench starts hashes API keys under. The bench's record
# is its own, so a fixed value keeps the keys of one run valid in every process of it.
API_KEY_SECRET = "mesh-bench-only-api-key-secret-never-for-a-deployment"
DATA_KEYS = "Y5_IXgyAyhvIOqmKJJZnGlp6Uq5s2yU6xJw32bLCvcw="  # the bench's only: public


@dataclass(frozen=True)
class Servers:
    """Where the bench keeps its state: its own Postgres database and Redis databases."""

    admin_url: str  # a database that exists, to create the bench's own
    database: str
    mesh_redis: str
    bare_redis: str

    @property
    def database_url(self) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + self.database

    @property
    def psycopg_url(self) -> str:
        return self.database_url.replace("postgresql+psycopg://", "postgresql://")


def prepare(servers: Servers) -> None:
    """Create the bench database if missing and migrate it; empty the bench's Redis databases."""
    from meshcore.adapters.sql.migrate import upgrade

    admin = servers.admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (servers.database,))
        if found.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{servers.database}"')
    upgrade(servers.database_url)
    reset_record(servers)


def reset_record(servers: Servers) -> None:
    """Drop every row the previous suite left, so that each suite starts on an empty record."""
    with psycopg.connect(servers.psycopg_url, autocommit=True) as conn:
        conn.execute("TRUNCATE networks, tasks, memory_items, api_keys CASCADE")
        conn.execute("DROP TABLE IF EXISTS bench_items")
    redis.Redis.from_url(servers.mesh_redis).flushdb()
    redis.Redis.from_url(servers.bare_redis).flushdb()


def settings(servers: Servers) -> Settings:
    """The bench process's own settings: the same servers and key secret as its children, and
    the tenant of their networks pinned, so that the bench's key and networks always agree."""
    return Settings(
        database_url=servers.database_url,
        redis_url=servers.mesh_redis,
        api_key_secret=SecretStr(API_KEY_SECRET),
        data_keys=SecretStr(DATA_KEYS),
        tenant=DEFAULT_TENANT,
        max_backlog=100_000_000,  # as mesh_env: the bench's own fleet takes every task
    )


def create_api_key(servers: Servers) -> str:
    """A read and write key of the bench's tenant, made and stored as `mesh keys create` does,
    so that each request pays the real check (a keyed hash, the key looked up in the record)."""
    s = settings(servers)
    mesh = bootstrap.build(s, create_celery(s))
    try:
        _, key = mesh.keys.create(
            tenant_id=s.tenant, scopes={Scope.READ, Scope.WRITE}, name="bench"
        )
    finally:
        mesh.close()
    return key


def mesh_env(servers: Servers, *, latency_ms: int = 0) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS and not k.startswith("MESH_")
    }
    env.update(
        MESH_DATABASE_URL=servers.database_url,
        MESH_REDIS_URL=servers.mesh_redis,
        MESH_API_KEY_SECRET=API_KEY_SECRET,
        MESH_DATA_KEYS=DATA_KEYS,
        # The bench drives thousands of requests a second with one key and leaves its tasks
        # queued: limits no client reaches, so the checks run (and cost what they cost)
        # without refusing the load.
        MESH_RATE_LIMIT="100000000/minute",
        MESH_MAX_TASKS_IN_FLIGHT="100000000",
        # The scale curve sends 1,000 tasks at once: the bench's own fleet measures the
        # pipeline past admission control, which the fleet `mesh serve` starts keeps on.
        MESH_MAX_BACKLOG="100000000",
        MESH_OFFLINE_LATENCY_MS=str(latency_ms),
        MESH_ALLOW_OFFLINE_MODEL="true",
        MESH_MODEL_CHAIN='["mesh-offline/offline-v1"]',
        MESH_LOG_LEVEL="WARNING",
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no fetch of the price map at import
        PYTHONUNBUFFERED="1",
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_mb(self) -> float:
        """Resident memory of the process and its children (gunicorn workers, pool)."""
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20
        except psutil.NoSuchProcess:
            return 0.0

    def cpu_seconds(self) -> float:
        try:
            root = psutil.Process(self.pid)
            total = 0.0
            for p in [root, *root.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
            return total
        except psutil.NoSuchProcess:
            return 0.0

    def settle(self, *, cores: float = 0.3, timeout: float = 15.0) -> None:
        """Wait, at most `timeout` s, until the process and its children use under `cores` of
        CPU: the backlog an earlier load left (requests its clients gave up on) is done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            time.sleep(0.5)
            if (self.cpu_seconds() - before) / 0.5 < cores:
                return


@contextmanager
def started(name: str, argv: Sequence[str], env: dict[str, str]) -> Iterator[Proc]:
    """Run argv in its own session; on exit, TERM its process group, then KILL it."""
    LOGS.mkdir(parents=True, exist_ok=True)
    path = LOGS / f"{name.split('@')[0]}.log"
    # A file, not a pipe: a chatty child must never block on a pipe no one reads.
    log = path.open("wb")
    popen = subprocess.Popen(
        list(argv), env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
    )
    proc = Proc(name, popen, path)
    try:
        yield proc
    finally:
        _stop_group(popen)
        log.close()


def _stop_group(popen: subprocess.Popen) -> None:
    try:
        os.killpg(popen.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=15)
    with suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)  # stragglers of the group, if any
    popen.wait()


def fail_if_exited(proc: Proc) -> None:
    if proc.popen.poll() is not None:
        err = proc.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{err}")


@contextmanager
def gunicorn(
    name: str, app: str, env: dict[str, str], served: Sequence[str] = MESH_SERVED
) -> Iterator[tuple[Proc, str]]:
    """gunicorn serving `app` (by default as `mesh serve` serves Mesh's API); yields the
    process and its base URL."""
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", app,
        "--bind", f"127.0.0.1:{port}",
        *served,
        "--worker-tmp-dir", "/dev/shm",
        "--backlog", "4096",
        # As mesh serve: the control socket's default path is one per user, and a second
        # gunicorn (another bench, a developer's mesh serve) would take it over.
        "--no-control-socket",
    ]  # fmt: skip
    with started(name, argv, env) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_http(proc, f"{base}/healthz")
        yield proc, base


def _wait_http(proc: Proc, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fail_if_exited(proc)
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} in {timeout} s")


@dataclass(frozen=True)
class WorkerSpec:
    hostname: str
    queues: Sequence[str]
    concurrency: int
    pool: str = "threads"


def mesh_worker_argv(spec: WorkerSpec) -> list[str]:
    return [
        sys.executable, "-m", "meshcli.main", "worker",
        "--queues", ",".join(spec.queues),
        "--pool", spec.pool,
        "--concurrency", str(spec.concurrency),
        "--hostname", spec.hostname,
    ]  # fmt: skip


def bare_worker_argv(spec: WorkerSpec) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "bench.bare_pipeline:app", "worker",
        "--queues", ",".join(spec.queues),
        "--pool", spec.pool,
        "--concurrency", str(spec.concurrency),
        "--hostname", spec.hostname,
        "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


@contextmanager
def workers(
    argvs: Sequence[tuple[str, list[str]]], env: dict[str, str], ping: object
) -> Iterator[list[Proc]]:
    """Start worker processes and wait until each answers a Celery ping on `ping` (an app)."""
    with ExitStack() as stack:
        procs = [stack.enter_context(started(name, argv, env)) for name, argv in argvs]
        _wait_ping(ping, procs)
        yield procs


def _wait_ping(app: object, procs: list[Proc], timeout: float = 90) -> None:
    names = {p.name for p in procs}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            fail_if_exited(p)
        replies = app.control.ping(destination=list(names), timeout=0.5) or []  # type: ignore[attr-defined]
        if {n for r in replies for n in r} >= names:
            return
        time.sleep(0.3)
    raise RuntimeError(f"workers {sorted(names)} did not answer a ping in {timeout} s")


def mesh_fleet_specs(coordinator: int, agents: int, pool: str = "threads") -> list[WorkerSpec]:
    """The workers `mesh serve` runs: a coordinator, and agents workers serving every agent
    queue, as many as `mesh serve` starts (MESH_AGENT_WORKERS), each with `agents` threads."""
    return layout("", coordinator, agents, pool)


def agent_workers() -> int:
    """How many agents workers `mesh serve` starts on this machine."""
    from meshcli.serve import agent_workers

    return agent_workers(Settings())


def layout(prefix: str, coordinator: int, agents: int, pool: str = "threads") -> list[WorkerSpec]:
    return [
        WorkerSpec(f"{prefix}coordinator@bench", ["coordinator"], coordinator, pool),
        *(
            WorkerSpec(f"{prefix}agents{i}@bench", list(AGENT_QUEUES), agents, pool)
            for i in range(1, agent_workers() + 1)
        ),
    ]


def loadgen_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def flush_queues(servers: Servers) -> None:
    """Drop messages no worker will take (tasks POSTed while only the API ran)."""
    redis.Redis.from_url(servers.mesh_redis).flushdb()
