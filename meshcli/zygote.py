"""`python -m meshcli.zygote REPLY_FD SUPERVISOR_PID`: the process `mesh serve` forks its
workers from (meshcli/forked.py says why).

It imports the libraries every worker imports, freezes them out of the garbage collector, and
then reads requests from stdin, one JSON line each: {"args": [...], "env": {...},
"niceness": n}. For each it forks twice: the first child forks the worker and exits at once,
so the worker is re-parented to the supervisor (a child subreaper), which then waits on it and
signals it as its own child. The worker's pid is written to REPLY_FD, one line each.

This module imports nothing of Mesh at the top: what the zygote holds is shared by every
worker, and Mesh's own modules (and prometheus_client, which fixes its multiprocess directory
when imported) must be imported by each worker itself.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
import time
import traceback

import setproctitle

PRELOADED = (
    "meshcore.adapters.litellm_env",  # litellm, with its offline cost map; no other Mesh module
    "celery.apps.worker",
    "celery.concurrency.thread",
    "kombu.transport.redis",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite",
    "alembic.runtime.migration",
    "cryptography.fernet",
    "opentelemetry.sdk.trace",
    "structlog",
    "tenacity",
)
REPARENT_TIMEOUT_S = 5.0


def main() -> None:
    reply_fd, supervisor = int(sys.argv[1]), int(sys.argv[2])
    # A Ctrl-C is for `mesh serve`, which stops the workers itself; a TERM ends the zygote.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setproctitle.getproctitle()  # it finds the command line's memory while it is intact
    for name in PRELOADED:
        importlib.import_module(name)
    leaked = [m for m in sys.modules if m.startswith(("prometheus_client", "meshworkers"))]
    if leaked:
        raise SystemExit(f"the zygote must not import {leaked[0]}: each worker imports it")
    gc.collect()
    gc.freeze()
    with os.fdopen(reply_fd, "w", buffering=1) as replies:
        for line in sys.stdin:
            request = json.loads(line)
            replies.write(f"{_fork_worker(request, supervisor, reply_fd)}\n")


def _fork_worker(request: dict, supervisor: int, reply_fd: int) -> int:
    """Fork the worker through a short-lived middle child; the worker's pid."""
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read)
        try:
            worker = os.fork()
            if worker == 0:
                os.close(write)
                os.close(reply_fd)
                _run_worker(request, supervisor)  # never returns
            os.write(write, f"{worker}\n".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        pid = int(answer.readline() or 0)
    os.waitpid(middle, 0)  # once the middle child is gone, the worker is the supervisor's
    return pid


def _run_worker(request: dict, supervisor: int) -> None:
    code = 1
    try:
        _become_worker(request, supervisor)
        from meshcli.main import main as mesh

        mesh.main(args=list(request["args"]), prog_name="mesh")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a forked child must never return into the zygote
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _become_worker(request: dict, supervisor: int) -> None:
    deadline = time.monotonic() + REPARENT_TIMEOUT_S
    while os.getppid() != supervisor:  # the middle child's exit hands it over
        if time.monotonic() > deadline:
            os._exit(1)
        time.sleep(0.001)
    os.setpgid(0, 0)  # a process group of its own, as meshcli/children.py explains
    from meshcli.children import set_parent_death_signal

    set_parent_death_signal()
    if os.getppid() != supervisor:  # it died before the signal was set
        os._exit(1)
    if request.get("niceness"):
        os.nice(request["niceness"])
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # stdin is the zygote's requests
    os.close(null)
    args = ["mesh", *request["args"]]
    setproctitle.setproctitle(" ".join(args))  # before the environment it finds argv by goes
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = args


if __name__ == "__main__":
    main()
