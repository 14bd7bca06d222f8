"""Load shedding: past a bound of requests at work in one API process, the next is refused at
once (503, Retry-After: 1) instead of waiting its turn for the CPU.

Under more load than the cores can serve, every request would otherwise queue behind the
others: all of them slow down together until clients time out, and the process goes on
working for clients that have gone (open-loop collapse). Refusing early keeps the answered
requests fast and tells the rest when to come back, for the price of reading their request.
Admission control (meshcore/services/admission.py) bounds the work the fleet takes on; this
bounds the requests an API process works on.

The refusal happens before authentication, routing and the rate limit: it must cost less than
the request it refuses. Clients that wait (a long poll's `wait=`, an event stream) hold a
greenlet but no CPU, so they are not counted; nor are the health checks and /metrics, which
must answer an orchestrator most of all when the process is busy.

The count is a plain integer: the API runs gevent workers, whose greenlets switch only at I/O,
and a request counted in one is never counted in another.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_SECONDS = 1
_BODY = json.dumps(
    {
        "code": 503,
        "status": "Service Unavailable",
        "message": "this API process is at its bound of requests at work "
        f"(MESH_MAX_REQUESTS_IN_FLIGHT); nothing was done: retry after {RETRY_AFTER_SECONDS} s",
    }
).encode()


class LoadShedder:
    """WSGI middleware: at most `limit` counted requests at work at once; 503 past it."""

    def __init__(self, app: WSGIApp, limit: int, on_shed: Callable[[], None] = lambda: None):
        self._app, self._limit, self._on_shed = app, limit, on_shed
        self.in_flight = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not _is_counted(environ):
            return self._app(environ, start_response)
        if self.in_flight >= self._limit:
            self._on_shed()
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(_BODY))),
                    ("Retry-After", str(RETRY_AFTER_SECONDS)),
                ],
            )
            return [_BODY]
        self.in_flight += 1
        try:
            # A counted answer is made whole here (only event streams, not counted, are
            # produced as they are sent), so the request's work ends with this call.
            return self._app(environ, start_response)
        finally:
            self.in_flight -= 1


def _is_counted(environ: dict[str, Any]) -> bool:
    path = environ.get("PATH_INFO", "")
    if path in UNCOUNTED_PATHS:
        return False
    if environ.get("REQUEST_METHOD") != "GET" or "/tasks/" not in path:
        return True
    # A task's event stream, or a long poll of it: waiting, not working.
    return not (path.endswith("/events") or "wait=" in environ.get("QUERY_STRING", ""))
