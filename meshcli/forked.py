"""Workers forked from a zygote that imported the libraries they all import, once.

Every worker imports litellm, Celery, SQLAlchemy and the rest: about 200 MiB, the same bytes
in each. Started with exec, each worker holds its own copy. Forked from a process that
imported them once and froze the objects out of the garbage collector (whose passes would
write to every page they walk, and so copy it), the workers share those pages: an idle
worker's proportional share of memory falls from about 295 MiB to about 170 (docs/
performance.md).

`mesh serve` cannot be that process: it has imported Mesh's own modules, prometheus_client
among them, and a worker must import those itself. So it starts a lean zygote
(meshcli/zygote.py) and asks it for each worker. It marks itself a child subreaper, so a
forked worker is re-parented to it: `mesh serve` waits on, signals and restarts the worker
as it would an exec'd child (meshcli/children.py), with the same process group, priority,
parent-death signal and environment, and a process title that reads as its command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO

from meshcli.children import libc, start_child

_PR_SET_CHILD_SUBREAPER = 36


class ForkedProcess:
    """A worker forked by the zygote and re-parented here, driven as a subprocess.Popen is."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # never ours, or reaped already: it has ended
                self.returncode = 1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)


class Zygote:
    """The zygote process, started on first use (and again if it has died)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._process: subprocess.Popen | None = None
        self._replies: IO[str] | None = None

    def start(self) -> None:
        """Start it now, to import while other children start; a fork waits for it."""
        self._running()

    def fork(self, args: Sequence[str], env: Mapping[str, str], *, niceness: int) -> ForkedProcess:
        """Run `mesh <args>` in a worker forked by the zygote, with `env` as its environment."""
        process, replies = self._running()
        assert process.stdin is not None
        request = {"args": list(args), "env": dict(env), "niceness": niceness}
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        line = replies.readline()
        if not line.strip() or not int(line):
            raise RuntimeError(f"the zygote did not fork `mesh {' '.join(args)}`")
        return ForkedProcess(int(line))

    def _running(self) -> tuple[subprocess.Popen, IO[str]]:
        if self._process is not None and self._process.poll() is None and self._replies:
            return self._process, self._replies
        self.stop()
        if libc().prctl(_PR_SET_CHILD_SUBREAPER, 1) != 0:
            raise OSError(ctypes.get_errno(), "could not become a child subreaper")
        read, write = os.pipe()
        argv = [sys.executable, "-m", "meshcli.zygote", str(write), str(os.getpid())]
        self._process = start_child(argv, self._env, stdin=subprocess.PIPE, pass_fds=(write,))
        os.close(write)
        self._replies = os.fdopen(read)
        return self._process, self._replies

    def stop(self) -> None:
        if self._process is not None:
            if self._process.stdin is not None:
                with contextlib.suppress(OSError):
                    self._process.stdin.close()  # its end of input: it exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
        if self._replies is not None:
            self._replies.close()
        self._process = self._replies = None


def can_fork() -> bool:
    """Whether workers can be forked here: Linux, which has child subreapers."""
    return sys.platform.startswith("linux")
