"""One `mesh serve` per data dir: an exclusive lock on a file in it, held while Mesh runs.

The lock is the operating system's (flock), so it goes with the process however it ends,
even on SIGKILL: a stale file never blocks the next start. The file records who holds it,
so the one refused can say which instance is in the way.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path

LOCK_FILE = "serve.lock"


class AlreadyRunning(Exception):
    """Another `mesh serve` holds the data dir, or another program holds the port."""


class DataDirLock:
    """Held from acquire() until release() or the process's end."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, *, port: int, shown_as: str) -> None:
        """Take the lock and record this process and its port, or raise AlreadyRunning."""
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"Mesh is already running from {shown_as} "
                f"(pid {holder.get('pid', '?')}) on port {holder.get('port', '?')}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "port": port}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> dict[str, object]:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}


def check_port_free(host: str, port: int) -> None:
    """Raise AlreadyRunning if something already listens on host:port.

    Checked before anything starts: gunicorn would only find out after the workers and Redis
    are up, and then retry for seconds before giving up.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise AlreadyRunning(
                f"Cannot start Mesh: port {port} is already in use on {host}; "
                "choose another with --port or MESH_PORT"
            ) from None
