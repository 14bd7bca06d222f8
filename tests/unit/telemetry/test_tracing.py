"""Trace context kept with a step, and links made back from it."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from meshcore.telemetry.tracing import current_trace_id, current_traceparent, links_to


def test_outside_any_span_there_is_no_context_to_keep() -> None:
    assert current_traceparent() is None
    assert current_trace_id() is None


def test_a_kept_traceparent_links_back_to_its_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("step") as span:
        kept = current_traceparent()
        trace_id = current_trace_id()
    ctx = span.get_span_context()

    assert kept == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert trace_id == f"{ctx.trace_id:032x}"
    [link] = links_to([kept])
    assert (link.context.trace_id, link.context.span_id) == (ctx.trace_id, ctx.span_id)
    assert link.context.is_remote


def test_steps_recorded_without_a_trace_or_with_garbage_make_no_links() -> None:
    assert links_to([None, "", "00-zz-yy-01", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"]) == []
    assert trace.get_current_span().get_span_context().is_valid is False


def test_without_an_otlp_endpoint_nothing_is_set_up_or_exported(monkeypatch) -> None:
    from meshcore.telemetry import tracing

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setattr(tracing, "_configured", [])

    assert tracing.configure("mesh-test") is False
    assert tracing._configured == []
    with tracing.tracer.start_as_current_span("mesh.plan") as span:
        assert not span.is_recording()
