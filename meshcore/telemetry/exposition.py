"""Serving the metrics of a family of processes (gunicorn workers, Celery children).

prometheus-client's multiprocess mode: each process writes its values to files in
PROMETHEUS_MULTIPROC_DIR and whoever is scraped reads them all. The directory must be set
before prometheus_client is imported, and belongs to one family of processes only: an entry
point calls `own_directory()` first thing, so an API and a worker started from one shell
never read each other's values.
"""

from __future__ import annotations

import hmac
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

ENV = "PROMETHEUS_MULTIPROC_DIR"

# What a scrape without the token gets (MESH_METRICS_TOKEN), from the API and workers alike.
UNAUTHORIZED_BODY = json.dumps(
    {
        "code": 401,
        "status": "Unauthorized",
        "message": "/metrics needs the header Authorization: Bearer <MESH_METRICS_TOKEN>",
    }
).encode()
UNAUTHORIZED_HEADERS = {
    "Content-Type": "application/json",
    "WWW-Authenticate": 'Bearer realm="metrics"',
}


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


def is_authorized(authorization: str | None, token: str | None) -> bool:
    """Whether a scrape may read the metrics: any, without a token; else only one that sends
    `Authorization: Bearer <token>`, compared in constant time."""
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def serve(port: int, *, token: str | None, addr: str = "0.0.0.0") -> None:
    """Serve /metrics of every process's values on `port` from a daemon thread, behind
    `token` when one is given (prometheus_client's own server takes no credentials)."""
    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    metrics = make_wsgi_app(registry())  # type: ignore[arg-type]

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not is_authorized(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", list(UNAUTHORIZED_HEADERS.items()))
            return [UNAUTHORIZED_BODY]
        return metrics(environ, start_response)

    server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per scrape."""

    def log_message(self, format: str, *args: object) -> None:
        return


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
