"""A real Prometheus server (Debian's package) on loopback, scraping the targets it is given."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.server import free_port


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> list[dict]:
        """The instant vector of `expr`, through the HTTP API."""
        answer = httpx.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]["result"]

    def targets_up(self) -> dict[str, str]:
        data = httpx.get(f"{self.base}/api/v1/targets", timeout=10).json()["data"]
        return {t["labels"]["job"] + "/" + t["labels"]["instance"]: t["health"]
                for t in data["activeTargets"]}


@contextmanager
def prometheus(workdir: Path, jobs: Mapping[str, Sequence[str]]) -> Iterator[Prometheus]:
    """Start Prometheus scraping each job's `host:port` targets every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed (Debian's `prometheus` package)")
    config = workdir / "prometheus.yml"
    scrape = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: {list(targets)}"
        for job, targets in jobs.items()
    )
    config.write_text(
        f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{scrape}\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=(workdir / "prometheus.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError((workdir / "prometheus.log").read_text())
            try:
                if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("prometheus did not become ready in 30 s")
        yield Prometheus(base)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
