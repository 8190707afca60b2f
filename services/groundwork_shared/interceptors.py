"""Cross-cutting behaviour for every unary and server-streaming RPC: a request whose strings are not
valid UTF-8 or hold a NUL is refused with the field named (validation.py),
domain errors become gRPC statuses with details, any other error becomes a bare
"internal error" with the trace id (never the exception's text), each call is
counted and timed (and logged when it failed or its trace is kept), and a
handler's response headers (ETag, Cache-Control) are sent; a response already
serialized (messages.Serialized, a cache entry returned whole) is sent as is. Which instance
answered, the sidecar says (x-groundwork-instance): initial metadata sent apart
from the message costs a round of the server's completion queue per call, so it
is sent only when a handler added headers."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from opentelemetry import trace

from groundwork_shared import statuses
from groundwork_shared.errors import DomainError, FieldViolation, InvalidArgument
from groundwork_shared.logs import in_sampled_trace
from groundwork_shared.messages import Serialized
from groundwork_shared.metrics import (
    RPC_DURATION,
    RPC_REQUESTS,
    RPC_STREAM_MESSAGES,
    RPC_STREAMS_OPEN,
)
from groundwork_shared.validation import NOT_UTF8, string_violations, undecodable_field

log = logging.getLogger("groundwork.rpc")

# Response headers a handler adds (ETag, Cache-Control): sent as the call's initial
# metadata, which the edge's transcoder makes HTTP headers.
_response_headers: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar(
    "groundwork_response_headers", default=None
)


def add_response_headers(*headers: tuple[str, str]) -> None:
    """Add headers to the current call's response (no-op outside a served call)."""
    pending = _response_headers.get()
    if pending is not None:
        pending.extend(headers)


# Set by the edge on the public reads that came as HTTP (REST), which its
# micro-cache and browsers cache; stripped from whatever a client sent.
HTTP_READ_HEADER = "x-groundwork-http-read"


def add_caching_headers(
    context: grpc.aio.ServicerContext[Any, Any], cache_control: str, etag: str = ""
) -> None:
    """HTTP caching headers, for a read that came as HTTP only: a gRPC caller has no
    use for them, and initial metadata sent apart from the message costs a round of
    the server's completion queue (a sixth of a cached read's CPU in catalog)."""
    if any(key == HTTP_READ_HEADER for key, _ in context.invocation_metadata() or ()):
        add_response_headers(("cache-control", cache_control), *([("etag", etag)] if etag else []))


class _Undecodable:
    """What the request deserializer returns for bytes protobuf refused, so the
    handler can answer 400 (a deserializer that raises makes grpc answer UNKNOWN
    with the exception's text)."""

    def __init__(self, violation: FieldViolation) -> None:
        self.violation = violation


def _tolerant(
    deserialize: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
            name = undecodable_field(descriptor, data) if descriptor is not None else None
            if name is None:
                return _Undecodable(FieldViolation("request", "is not a valid message"))
            return _Undecodable(FieldViolation(name, NOT_UTF8))

    return parse


def _as_is_or(
    serialize: Callable[[Any], bytes] | None,
) -> Callable[[Any], bytes] | None:
    """The handler's serializer, except for a response already serialized."""
    if serialize is None:
        return None

    def encode(response: Any) -> bytes:
        return response.data if isinstance(response, Serialized) else serialize(response)

    return encode


def _checked(request: Any) -> None:
    if isinstance(request, _Undecodable):
        raise InvalidArgument([request.violation])
    if isinstance(request, Message):
        violations = string_violations(request)
        if violations:
            raise InvalidArgument(violations)


def _unreachable(error: Exception) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() is grpc.StatusCode.UNAVAILABLE


def _traced(message: str) -> str:
    """`message` and the call's trace id: what a client may quote, nothing more."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return f"{message} (trace {format(context.trace_id, '032x')})"
    return message


async def _abort(
    error: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str
) -> grpc.StatusCode:
    """End the call for `error` (always raises): a domain error as its status with
    details, an unreachable dependency as UNAVAILABLE, anything else as a bare
    "internal error" with the trace id."""
    if isinstance(error, DomainError):
        # A failed call carries no caching headers.
        status = statuses.to_status(error)
        await context.abort(status.code, status.details, status.trailing_metadata)
    if _unreachable(error):
        # A service this call needs cannot be reached (starting, rolling,
        # ejected): the caller may retry, so say so rather than "internal".
        log.warning("a dependency is unavailable", extra={"method": method, "error": str(error)})
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, _traced("a service this call needs is unavailable")
        )
    log.exception("unhandled error", extra={"method": method})
    await context.abort(grpc.StatusCode.INTERNAL, _traced("internal error"))
    raise AssertionError("abort returned")  # pragma: no cover


def _code_of(error: Exception) -> grpc.StatusCode:
    if isinstance(error, DomainError):
        return statuses.code_of(error)
    return grpc.StatusCode.UNAVAILABLE if _unreachable(error) else grpc.StatusCode.INTERNAL


def _record(method: str, code: grpc.StatusCode, started: float) -> None:
    """Count and time the call; log it when it failed or its trace is kept (or at
    DEBUG): a line per call would cost more than many of the calls."""
    if method.startswith("/grpc.health."):
        return
    elapsed = time.perf_counter() - started
    RPC_REQUESTS.labels(method, code.name).inc()
    RPC_DURATION.labels(method).observe(elapsed)
    level = logging.DEBUG
    if code is not grpc.StatusCode.OK or in_sampled_trace():
        level = logging.INFO
    if log.isEnabledFor(level):
        log.log(
            level,
            "rpc",
            extra={"method": method, "code": code.name, "duration_ms": round(elapsed * 1000, 2)},
        )


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    """The behaviour above for unary and server-streaming RPCs (a stream is also
    counted in RPC_STREAMS_OPEN while it runs). Client-streaming handlers (server
    reflection) pass through as they are."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            return _unary(handler, details.method)
        if handler.unary_stream is not None:
            return _server_stream(handler, details.method)
        return handler


def _unary(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    inner = handler.unary_unary
    assert inner is not None

    async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        headers: list[tuple[str, str]] = []
        token = _response_headers.set(headers)
        try:
            _checked(request)
            response = await inner(request, context)  # type: ignore[arg-type]
            if headers:
                await context.send_initial_metadata(headers)
            return response
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except Exception as error:
            code = _code_of(error)
            await _abort(error, context, method)
        finally:
            _response_headers.reset(token)
            _record(method, code, started)

    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=_as_is_or(handler.response_serializer),
    )


def _server_stream(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    inner = handler.unary_stream
    assert inner is not None

    async def behaviour(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        open_streams = RPC_STREAMS_OPEN.labels(method)
        written = RPC_STREAM_MESSAGES.labels(method)
        open_streams.inc()
        try:
            _checked(request)
            async for response in inner(request, context):  # type: ignore[arg-type,attr-defined]
                yield response
                written.inc()  # grpc resumes this once the transport took the message
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            # The client went away (cancelled, deadline passed, connection closed).
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as error:
            code = _code_of(error)
            await _abort(error, context, method)
        finally:
            open_streams.dec()
            _record(method, code, started)

    return grpc.unary_stream_rpc_method_handler(
        behaviour,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )
