"""The API's metrics, traces and log context: per request, and GET /metrics."""

from __future__ import annotations

import time

import structlog
from flask import Flask, Response, g, request

from meshapi.context import mesh
from meshcore.telemetry import exposition, metrics, tracing


def install(app: Flask) -> None:
    """Time and count every request by route, trace it, and serve /metrics."""
    if tracing.configure("mesh-api"):
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        from meshworkers.telemetry import trace_celery

        FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz,metrics")
        trace_celery()
    app.before_request(_started)
    app.after_request(_finished)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _started() -> None:
    g.mesh_started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    ids = request.view_args or {}
    structlog.contextvars.bind_contextvars(
        **{k: str(ids[k]) for k in ("network_id", "task_id") if k in ids}
    )


def _finished(response: Response) -> Response:
    started = g.get("mesh_started")
    # The route's template, never the raw path: ids would make a series per task.
    route = request.url_rule.rule if request.url_rule else "unmatched"
    if started is not None and route != "/metrics":
        metrics.http_requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.http_request_duration.labels(route, request.method).observe(
            time.perf_counter() - started
        )
    return response


def _metrics() -> Response:
    token = mesh().settings.metrics_token
    if not exposition.is_authorized(
        request.headers.get("Authorization"), token.get_secret_value() if token else None
    ):
        return Response(
            exposition.UNAUTHORIZED_BODY, status=401, headers=exposition.UNAUTHORIZED_HEADERS
        )
    body, content_type = exposition.render(mesh().fleet_gauges())
    return Response(body, content_type=content_type)
