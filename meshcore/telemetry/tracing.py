"""OpenTelemetry: one trace per task, from the HTTP request through every queue hop.

Code records spans through the API (`tracer`), which does nothing until `configure` installs
the SDK. `configure` exports over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard
OTEL_* variables configure the exporter) and exports nothing otherwise. Flask and Celery are
instrumented by their entry points, Redis here, and the engine by the composition root.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, TraceFlags

tracer = trace.get_tracer("mesh")
F = TypeVar("F", bound=Callable[..., Any])

_configured: list[object] = []


def configure(service_name: str, exporter: object | None = None) -> bool:
    """Install the SDK once per process; answers whether spans are exported at all."""
    if _configured:
        return True
    if exporter is None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument()
    _configured.append(provider)
    return True


def instrument_engine(engine: object) -> None:
    """Trace the statements of the process's SQLAlchemy engine (once tracing is configured)."""
    if not _configured:
        return
    # The instrumentor's declared range stops before SQLAlchemy 2.1 and its instrument()
    # imports sqlalchemy.ext.asyncio (greenlet); its engine hooks work on 2.1 as they are, so
    # they are attached directly. The trace test checks that statements appear.
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    connections = get_meter("mesh").create_up_down_counter("db.client.connections.usage")
    EngineTracer(trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine,
                 connections)


def shutdown() -> None:
    """Flush what is buffered (at process exit, or before a test reads its exporter)."""
    for provider in _configured:
        provider.shutdown()  # type: ignore[attr-defined]


def current_traceparent() -> str | None:
    """The current span as a W3C traceparent, to keep with what the span produced."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def links_to(traceparents: Iterable[str | None]) -> list[Link]:
    """Links to the spans named by traceparents (the agent steps a synthesis merges)."""
    links = []
    for value in traceparents:
        parts = (value or "").split("-")
        if len(parts) != 4:
            continue
        try:
            ctx = SpanContext(
                trace_id=int(parts[1], 16),
                span_id=int(parts[2], 16),
                is_remote=True,
                trace_flags=TraceFlags(int(parts[3], 16)),
            )
        except ValueError:
            continue
        if ctx.is_valid:
            links.append(Link(ctx))
    return links


def stage_span(
    name: str, links: Callable[[Any], Iterable[str | None]] | None = None
) -> Callable[[F], F]:
    """Run a coordinator stage, `method(self, task, network, iteration, steps?, ...)`, in a
    span named for it; `links` picks, from the fourth argument, the traceparents to link."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def run(
            self: object, task: Any, network: Any, iteration: int, *args: Any, **kwargs: Any
        ) -> Any:
            attributes = {"mesh.task_id": str(task.id), "mesh.network_id": str(task.network_id),
                          "mesh.iteration": iteration}
            linked = links_to(links(args[0])) if links and args else None
            with tracer.start_as_current_span(name, attributes=attributes, links=linked):
                return method(self, task, network, iteration, *args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
