"""`mesh serve`: the API and the workers as child processes, on embedded servers if need be.

One `mesh serve` runs per data dir (meshcli/lock.py). It supervises its children: a worker
or the embedded Redis that dies is started again; if the API exits, or Redis cannot be
started again, everything stops, so it never serves half a system. It stops on SIGINT,
SIGTERM or SIGHUP: the API and workers first (each finishes what it is doing within the
grace period, or hands it back), Redis last, and its last line says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from meshcli.banner import announce, typed_path
from meshcli.children import start_child
from meshcli.embedded_redis import EmbeddedRedis, RedisNotStarted
from meshcli.forked import ForkedProcess, Zygote, can_fork
from meshcli.keys import first_start_key
from meshcli.lock import AlreadyRunning, DataDirLock, check_port_free
from meshcore.logs import configure_logging
from meshcore.process_secrets import api_key_secret, data_keys
from meshcore.settings import Settings

# How long a stop waits for a busy API request or agent step; an idle stop takes about 1 s.
STOP_GRACE_SECONDS = 10
# After the grace, a worker's cold shutdown hands its running steps back (acks_late).
COLD_STOP_SECONDS = 3
# A Redis that dies this often is broken (disk full, corrupt log): stop instead of looping.
REDIS_RESTARTS_PER_MINUTE = 3
POLL_SECONDS = 0.2
# The workers run this much below the API's CPU priority. When both cores are busy, a
# client's GET or submit (or its refusal) is answered first, so a backlog of work costs
# the workers time, not the clients answers; an idle API takes nothing from them.
WORKER_NICENESS = 5


@dataclass
class Child:
    """A supervised process: how to start it, and the running one. With a zygote, the child
    runs `mesh <argv>` forked by it (meshcli/forked.py); without, argv is exec'd."""

    name: str
    argv: list[str]
    env: dict[str, str]
    niceness: int = 0
    zygote: Zygote | None = None
    process: subprocess.Popen | ForkedProcess | None = None

    def start(self) -> None:
        if self.zygote is not None:
            self.process = self.zygote.fork(self.argv, self.env, niceness=self.niceness)
        else:
            self.process = start_child(self.argv, self.env, niceness=self.niceness)

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal(self, signum: int) -> None:
        if self.exit_code() is None and self.process is not None:
            self.process.send_signal(signum)


@dataclass
class Fleet:
    workers: list[Child]
    api: Child
    redis: EmbeddedRedis | None
    zygote: Zygote | None = None
    redis_deaths: list[float] = field(default_factory=list)

    def start(self) -> None:
        # The zygote imports the workers' libraries while the API starts.
        if self.zygote is not None:
            self.zygote.start()
        for child in [self.api, *self.workers]:
            child.start()

    def supervise(self, stopping: list[int]) -> int:
        """Keep everything running until a signal arrives; the exit code for `mesh serve`."""
        while not stopping:
            redis_code = None if self.redis is None else self.redis.exit_code()
            if redis_code is not None and not self._restart_redis(redis_code):
                return 1
            for worker in self.workers:
                if (code := worker.exit_code()) is not None:
                    click.echo(f"{worker.name} exited ({code}); restarting it", err=True)
                    worker.start()
            if (code := self.api.exit_code()) is not None:
                click.echo(f"The API exited ({code}); stopping Mesh.", err=True)
                return code or 1
            time.sleep(POLL_SECONDS)
        return 0

    def _restart_redis(self, code: int) -> bool:
        now = time.monotonic()
        self.redis_deaths = [t for t in self.redis_deaths if now - t < 60] + [now]
        if len(self.redis_deaths) > REDIS_RESTARTS_PER_MINUTE:
            click.echo(
                f"The embedded Redis exited ({code}) {len(self.redis_deaths)} times in a "
                "minute; stopping Mesh.",
                err=True,
            )
            return False
        click.echo(f"The embedded Redis exited ({code}); restarting it.", err=True)
        assert self.redis is not None
        try:
            self.redis.start()
        except RedisNotStarted as exc:
            click.echo(f"{exc}; stopping Mesh.", err=True)
            return False
        return True

    def stop(self) -> None:
        """The API and workers first, each within the grace period; then Redis."""
        children = [self.api, *self.workers]
        for child in children:
            child.signal(signal.SIGTERM)
        late = _wait(children, STOP_GRACE_SECONDS)
        for child in late:
            click.echo(f"{child.name} is still busy; handing its work back.", err=True)
            child.signal(signal.SIGQUIT)  # Celery's cold shutdown; gunicorn's quick one
        for child in _wait(late, COLD_STOP_SECONDS):
            click.echo(f"{child.name} did not stop; killing it.", err=True)
            child.signal(signal.SIGKILL)
        _wait(children, COLD_STOP_SECONDS)
        if self.zygote is not None:
            self.zygote.stop()
        if self.redis is not None:
            self.redis.stop()


def _wait(children: list[Child], timeout: float) -> list[Child]:
    """Wait until the children exit or the timeout passes; those still running."""
    deadline = time.monotonic() + timeout
    running = [c.process for c in children if c.process is not None]
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    return [c for c in children if c.exit_code() is None and c.process is not None]


def run(settings: Settings, *, host: str, port: int) -> int:
    """Start everything, supervise it until a signal arrives, then stop it all."""
    configure_logging("WARNING")  # its own lines are the banner's; its children log their own
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Before any API process starts: on the embedded default they all read the secret
        # this makes in the data dir; on real servers, refuse to start without one.
        secret = api_key_secret(settings)
        keys = data_keys(settings)  # the same for the data keys that content is sealed under
    except ValueError as exc:
        click.echo(str(exc), err=True)
        return 1
    lock = DataDirLock(data_dir)
    try:
        lock.acquire(port=port, shown_as=typed_path(data_dir))
        check_port_free(host, port)
    except AlreadyRunning as exc:
        lock.release()
        click.echo(str(exc), err=True)
        return 1
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, _: stopping.append(signum))
    fleet = _fleet(settings, data_dir, host=host, port=port, key_secret=secret, data_keys=keys)
    try:
        if fleet.redis is not None:
            fleet.redis.start()
        from meshcore.adapters.sql.migrate import upgrade

        upgrade(fleet.api.env["MESH_DATABASE_URL"])
        if not stopping:
            first_key = None
            if settings.is_embedded and settings.dev_api_key is None:
                first_key = first_start_key(settings)
            fleet.start()
            announce(settings, host=host, port=port, data_dir=data_dir, first_key=first_key)
        code = fleet.supervise(stopping)
    except RedisNotStarted as exc:
        click.echo(str(exc), err=True)
        code = 1
    finally:
        fleet.stop()
        lock.release()
    click.echo("Mesh stopped.", err=True)
    return code


def _fleet(
    settings: Settings,
    data_dir: Path,
    *,
    host: str,
    port: int,
    key_secret: bytes,
    data_keys: str,
) -> Fleet:
    env = dict(os.environ)
    # The children are given both servers' URLs, so they cannot tell they run on the embedded
    # default: they get the data dir's key secret and data keys too.
    env["MESH_API_KEY_SECRET"] = key_secret.decode()
    env["MESH_DATA_KEYS"] = data_keys
    redis = None
    if settings.redis_url is None:
        redis = EmbeddedRedis(data_dir)
        env["MESH_REDIS_URL"] = redis.url
    env["MESH_DATABASE_URL"] = settings.resolved_database_url()
    env["MESH_DATA_DIR"] = str(data_dir)
    # On Linux the workers are forked by a zygote, to share the libraries it imported once;
    # elsewhere (no child subreapers) each is `mesh worker`, exec'd.
    zygote = Zygote(env) if can_fork() else None
    mesh = ["worker"] if zygote else [sys.executable, "-m", "meshcli.main", "worker"]
    # Webhook deliveries are light (one POST each): the coordinator worker takes them too.
    coordinator = [*mesh, "--queues", "coordinator,webhooks", "--concurrency", "8"]
    workers = [
        Child(
            "coordinator worker",
            [*coordinator, "--hostname", "coordinator@%h", "--beat"],
            _metrics_env(env, settings, 0),
            WORKER_NICENESS,
            zygote,
        )
    ]
    for i in range(1, agent_workers(settings) + 1):
        argv = [*mesh, "--queues", ",".join(_agent_queues()), "--hostname", f"agents{i}@%h"]
        workers.append(
            Child(
                f"agents worker {i}",
                argv,
                _metrics_env(env, settings, i),
                WORKER_NICENESS,
                zygote,
            )
        )
    api = [
        *(sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}"),
        # gevent workers (meshapi/gunicorn_conf.py): waiting clients hold no thread.
        *("--workers", "2"),
        *("--graceful-timeout", str(STOP_GRACE_SECONDS), "--access-logfile", "-"),
        # gunicorn's control socket defaults to one path per user ($HOME/.gunicorn), which a
        # second instance would take over; mesh serve does not use it.
        "--no-control-socket",
        *("--config", "python:meshapi.gunicorn_conf", "meshapi.app:create_app()"),
    ]
    return Fleet(workers=workers, api=Child("The API", api, env), redis=redis, zygote=zygote)


def _metrics_env(env: dict[str, str], settings: Settings, index: int) -> dict[str, str]:
    # Each worker serves /metrics on its own port: the coordinator on MESH_METRICS_PORT, the
    # agents workers on the ports after it.
    metrics_port = settings.metrics_port + index if settings.metrics_port else 0
    return {**env, "MESH_METRICS_PORT": str(metrics_port)}


def agent_workers(settings: Settings) -> int:
    """MESH_AGENT_WORKERS, or one agents worker per CPU this process may run on, at most 2:
    each holds about 300 MiB and up to 20 Postgres connections, and a larger fleet is a
    decision for its operator."""
    return settings.agent_workers or min(2, len(os.sched_getaffinity(0)))


def _agent_queues() -> list[str]:
    from meshworkers.app import QUEUES

    return [q for q in QUEUES if q not in ("coordinator", "webhooks")]
