"""OpenTelemetry traces for every service, exported over OTLP/gRPC.

Off unless GROUNDWORK_OTLP_ENDPOINT is set: then no provider is installed and the
API's no-op tracer costs a function call per span. On: gRPC server and client,
asyncpg and Redis are instrumented; Envoy's `traceparent` continues the edge's
trace into the service; sampling is parent-based with a ratio for new traces
(GROUNDWORK_TRACE_SAMPLING), so a service never splits a trace the edge kept.

Background loops (polls, sweeps, health probes) run under `background()`: their
queries would otherwise start a new trace every second and bury the requests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from importlib import metadata

from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Span, SpanKind

from groundwork_shared.settings import ServiceSettings

TRACER = "groundwork"
_HEALTH = "grpc.health.v1.Health"


@cache  # read from the installed metadata once, not per span
def version() -> str:
    try:
        return metadata.version("groundwork")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def setup(service: str, settings: ServiceSettings) -> None:
    """Install tracing when an endpoint is configured."""
    if not settings.otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create(
        {
            "service.name": service,  # what users see in Jaeger: mesh.yaml's name
            "service.version": version(),
            "service.instance.id": settings.instance_id,
            "deployment.environment.name": settings.deployment_environment,
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.trace_sampling))
    )
    exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    # Health checks arrive every two seconds from each sidecar: not worth a trace.
    not_health = filters.negate(filters.service_name(_HEALTH))
    GrpcAioInstrumentorServer(filter_=not_health).instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient(filter_=not_health).instrument()  # type: ignore[no-untyped-call]
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument()


def flush() -> None:
    """Export what is buffered (at exit); nothing to do when tracing is off."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER, version())


@contextlib.contextmanager
def background() -> Iterator[None]:
    """No spans from instrumented libraries inside (polling loops, probes)."""
    with suppress_instrumentation():
        yield


def current_traceparent() -> tuple[str, str]:
    """The W3C trace context of the current span, to carry in an event envelope."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", ""), carrier.get("tracestate", "")


@contextlib.contextmanager
def continued(name: str, traceparent: str, tracestate: str, **attributes: str) -> Iterator[Span]:
    """A CONSUMER span that continues the producer's trace as its child.

    A child rather than a link: each message has exactly one producer, and its
    effect (a ticket, a seat-map change) belongs to the purchase that caused it, so
    the whole booking reads as one trace. Started from a fresh context, so it is
    recorded even inside `background()`."""
    carrier = {"traceparent": traceparent, "tracestate": tracestate}
    parent = propagate.extract(carrier, context=context.Context())
    token = context.attach(parent)
    try:
        with tracer().start_as_current_span(
            name, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield span
    finally:
        context.detach(token)
