"""Serving the metrics of a family of processes (gunicorn workers, Celery children).

prometheus-client's multiprocess mode: each process writes its values to files in
PROMETHEUS_MULTIPROC_DIR and whoever is scraped reads them all. The directory must be set
before prometheus_client is imported, and belongs to one family of processes only: an entry
point calls `own_directory()` first thing, so an API and a worker started from one shell
never read each other's values.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable

ENV = "PROMETHEUS_MULTIPROC_DIR"


def own_directory() -> str:
    """Give this process and its children a fresh, empty metrics directory."""
    path = tempfile.mkdtemp(prefix="mesh-metrics-")
    os.environ[ENV] = path
    return path


def registry(extra: Iterable[object] = ()) -> object:
    """A registry holding every process's values (or this one's), plus `extra` collectors."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if ENV not in os.environ:
        if not extra:
            return REGISTRY
        combined = CollectorRegistry(auto_describe=True)
        combined.register(_Delegate(REGISTRY))
    else:
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
    for collector in extra:
        combined.register(collector)  # type: ignore[arg-type]
    return combined


def render(extra: Iterable[object] = ()) -> tuple[bytes, str]:
    """The text exposition of every value, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry(extra)), CONTENT_TYPE_LATEST  # type: ignore[arg-type]


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges; its counters stay, as Prometheus expects."""
    if ENV in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def remove_directory() -> None:
    path = os.environ.get(ENV)
    if path and os.path.basename(path).startswith("mesh-metrics-"):
        shutil.rmtree(path, ignore_errors=True)


class _Delegate:
    """The default registry's samples inside another registry."""

    def __init__(self, source: object) -> None:
        self._source = source

    def collect(self) -> Iterable[object]:
        return self._source.collect()  # type: ignore[attr-defined]
