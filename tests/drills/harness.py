"""Fault drills: a private Redis, real Celery workers that can be killed and restarted, a batch.

Each drill runs its own redis-server on a spare port, so killing or restarting it disturbs
no other test; the record is the shared test Postgres (random ids). Workers log JSON to
files, which the audit reads for model calls.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import uuid4

import kombu.exceptions
import redis

from meshcore import bootstrap
from meshcore.bootstrap import Mesh
from meshcore.domain.errors import Unavailable
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.settings import Settings
from meshworkers.app import QUEUES, create_celery
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.e2e.server import DEV_KEY

PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")
AGENT_QUEUES = [q for q in QUEUES if q != "coordinator"]
# Recovery in the drills is bounded by these: a step silent for STALL seconds is presumed dead.
DRILL_SETTINGS = {
    "MESH_STALL_SECONDS": "4",
    "MESH_SWEEP_INTERVAL_SECONDS": "1",
    "MESH_OFFLINE_LATENCY_MS": "300",
    "MESH_LOG_LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of the drill's own, with no persistence: a restart loses everything."""

    def __init__(self, workdir: Path) -> None:
        self.port, self._workdir = free_port(), workdir
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def freeze(self) -> None:
        """Hang the server: connections stay open and nothing is answered (SIGSTOP)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)


class PrivatePostgres:
    """A Postgres cluster of the drill's own (initdb, pg_ctl), so it can be restarted."""

    def __init__(self, options: str = "") -> None:
        """`options` are more server options for pg_ctl -o (e.g. `-c ssl=on ...`)."""
        self.port = free_port()
        self.options = options
        # The server runs as postgres, which cannot enter pytest's root-only temp folders.
        self._dir = Path(tempfile.mkdtemp(prefix="mesh-drill-pg-"))
        shutil.chown(self._dir, "postgres", "postgres")
        bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self._initdb, self._pg_ctl = str(bin_dir / "initdb"), str(bin_dir / "pg_ctl")
        self._as_postgres(
            [
                self._initdb,
                "-D",
                str(self._dir / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c max_connections=200 {self.options}"
        )
        self._as_postgres(
            [
                self._pg_ctl,
                "-D",
                str(self._dir / "data"),
                "-o",
                options,
                "-l",
                str(self._dir / "log"),
                "-w",
                "start",
            ]
        )

    def stop(self) -> None:
        self._as_postgres(
            [self._pg_ctl, "-D", str(self._dir / "data"), "-m", "immediate", "-w", "stop"]
        )

    def remove(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                self._pg_ctl,
                "-D",
                str(self._dir / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self._dir, ignore_errors=True)

    def _as_postgres(self, argv: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True)


@dataclass
class Worker:
    name: str
    queues: list[str]
    pool: str = "threads"
    concurrency: int = 32
    beat: bool = False
    process: subprocess.Popen | None = None
    starts: int = 0
    is_stopped: bool = False  # killed on purpose: the supervisor leaves it down


@dataclass
class Drill:
    mesh: Mesh
    env: dict[str, str]
    logs: Path
    workers: dict[str, Worker] = field(default_factory=dict)

    def start(self, worker: Worker) -> None:
        worker.is_stopped = False
        worker.starts += 1
        log = open(self.logs / f"{worker.name}.{worker.starts}.log", "w")  # noqa: SIM115
        argv = [
            sys.executable,
            "-m",
            "meshcli.main",
            "worker",
            "--queues",
            ",".join(worker.queues),
            "--pool",
            worker.pool,
            "--concurrency",
            str(worker.concurrency),
            "--hostname",
            f"{worker.name}@drill",
        ]
        if worker.beat:
            argv.append("--beat")
        worker.process = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=log, start_new_session=True
        )
        self.workers[worker.name] = worker

    def kill(self, name: str) -> None:
        """SIGKILL the worker's whole process group: no warm shutdown, no acks."""
        worker = self.workers[name]
        assert worker.process is not None
        worker.is_stopped = True
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()

    def terminate(self, name: str, timeout: float = 60) -> float:
        """SIGTERM the worker, as Kubernetes does on a rollout; answers how long it took."""
        worker = self.workers[name]
        assert worker.process is not None
        worker.is_stopped = True
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        worker.process.wait(timeout=timeout)
        return time.monotonic() - started

    def supervise(self) -> int:
        """Restart workers that exited on their own, as Kubernetes or compose would."""
        restarted = 0
        for worker in list(self.workers.values()):
            if not worker.is_stopped and worker.process and worker.process.poll() is not None:
                self.start(worker)
                restarted += 1
        return restarted

    def wait_ready(self, names: list[str], timeout: float = 90) -> None:
        app = self.mesh.dispatcher._app  # the same Celery app the services dispatch with
        deadline = time.monotonic() + timeout
        hostnames = {f"{n}@drill" for n in names}
        while time.monotonic() < deadline:
            try:
                replies = app.control.ping(destination=list(hostnames), timeout=0.5) or []
            except (kombu.exceptions.OperationalError, redis.RedisError):
                replies = []  # Redis is restarting: this process reconnects on the next ping
            if {h for r in replies for h in r} >= hostnames:
                return
            time.sleep(0.3)
        raise RuntimeError(f"workers {names} did not answer")

    def submit_batch(self, count: int, config: NetworkConfig | None = None) -> list[Task]:
        services = self.mesh.tenant(self.mesh.settings.tenant)
        network = services.networks.create(
            name=f"drill-{uuid4().hex[:8]}",
            description="",
            config=config or NetworkConfig(quality_threshold=0.0, timeout_seconds=600),
        )
        return [
            services.tasks.submit(
                network.id, description=f"Launch email #{i}", context={}, priority=Priority.NORMAL
            )
            for i in range(count)
        ]

    def read(self, tasks: list[Task]) -> list[Task]:
        """The tasks as the record has them; as a client would on a 503, try again."""
        services = self.mesh.tenant(self.mesh.settings.tenant)
        for _ in range(10):
            try:
                return [services.tasks.get(t.network_id, t.id) for t in tasks]
            except Unavailable:
                time.sleep(0.5)
        return [services.tasks.get(t.network_id, t.id) for t in tasks]

    def wait_all(self, tasks: list[Task], timeout: float) -> tuple[list[Task], float]:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.supervise()
            current = self.read(tasks)
            if all(t.status.is_terminal for t in current):
                return current, time.monotonic() - started
            time.sleep(0.5)
        return self.read(tasks), time.monotonic() - started

    def wait_until(self, tasks: list[Task], predicate, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.read(tasks)):
                return
            time.sleep(0.1)
        raise AssertionError("the drill's precondition never came about")


@contextmanager
def drill(
    tmp_path: Path,
    database_url: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[Drill, PrivateRedis]]:
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
    env.update(DRILL_SETTINGS)
    env.update(
        MESH_DATABASE_URL=database_url,
        MESH_REDIS_URL=redis_server.url,
        MESH_DATA_DIR=str(tmp_path),
        MESH_DATA_KEYS=DATA_KEYS,
    )
    env.update(extra_env or {})
    # The drill's API calls use the development key: no key lookup in a record that is down.
    settings = Settings(
        database_url=database_url,
        redis_url=redis_server.url,
        api_key_secret=API_KEY_SECRET,
        data_keys=DATA_KEYS,
        dev_api_key=DEV_KEY,
    )
    mesh = bootstrap.build(settings, create_celery(settings))
    logs = tmp_path / "logs"
    logs.mkdir()
    run = Drill(mesh, env, logs)
    try:
        yield run, redis_server
    finally:
        for worker in run.workers.values():
            if worker.process is not None and worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
        mesh.close()
        redis_server.stop()


@dataclass(frozen=True)
class Audit:
    accepted: int
    completed: int
    lost: int
    duplicates: int
    repeated_model_calls: int
    recovery_seconds: float

    def line(self, name: str) -> str:
        return (
            f"drill {name}: accepted={self.accepted} completed={self.completed} "
            f"duplicates={self.duplicates} lost={self.lost} "
            f"repeated_model_calls={self.repeated_model_calls} "
            f"recovery_seconds={self.recovery_seconds:.1f}"
        )


def audit(run: Drill, tasks: list[Task], recovery_seconds: float) -> Audit:
    """Count what a user would check: every task done, each result once, no model call wasted."""
    done = run.read(tasks)
    duplicates = 0
    recorded_at: dict[tuple[str, int, str], datetime] = {}
    for task in done:
        lines = Counter(
            (e.detail["iteration"], e.detail["subtask"]) for e in task.history if e.kind == "step"
        )
        duplicates += sum(n - 1 for n in lines.values())
        for e in task.history:
            if e.kind == "step":
                recorded_at.setdefault(
                    (str(task.id), e.detail["iteration"], e.detail["subtask"]), e.at
                )
    repeated = 0
    for path in run.logs.glob("*.log"):
        for raw in path.read_text(errors="replace").splitlines():
            if '"step.model_call"' not in raw:
                continue
            event, _ = json.JSONDecoder().raw_decode(raw[raw.index('{"') :])
            if event.get("event") != "step.model_call":
                continue
            key = (event["task_id"], event["iteration"], event["subtask"])
            at = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
            if key in recorded_at and at > recorded_at[key]:
                repeated += 1
    completed = sum(t.status is TaskStatus.COMPLETED for t in done)
    return Audit(
        len(tasks), completed, len(tasks) - completed, duplicates, repeated, recovery_seconds
    )
