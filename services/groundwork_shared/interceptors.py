"""Cross-cutting behaviour for every unary RPC: domain errors become gRPC
statuses with details, each call is logged with its code and duration, and
responses name the instance that served them (x-groundwork-instance)."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from groundwork_shared.errors import DomainError
from groundwork_shared.metrics import RPC_DURATION, RPC_REQUESTS

log = logging.getLogger("groundwork.rpc")

INSTANCE_HEADER = "x-groundwork-instance"
# Response headers a handler adds (ETag, Cache-Control): sent with the instance's
# name as the call's initial metadata, which the edge's transcoder makes HTTP headers.
_response_headers: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar(
    "groundwork_response_headers", default=None
)


def add_response_headers(*headers: tuple[str, str]) -> None:
    """Add headers to the current call's response (no-op outside a served call)."""
    pending = _response_headers.get()
    if pending is not None:
        pending.extend(headers)


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, instance_id: str) -> None:
        self._instance = instance_id

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = details.method
        instance = self._instance

        async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            headers = [(INSTANCE_HEADER, instance)]
            token = _response_headers.set(headers)
            try:
                response = await inner(request, context)  # type: ignore[arg-type]
                await context.send_initial_metadata(headers)
                return response
            except DomainError as error:
                # A failed call names its instance but carries no caching headers.
                await context.send_initial_metadata(headers[:1])
                code = error.grpc_code
                status = error.to_status()
                await context.abort(status.code, status.details, status.trailing_metadata)
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                await context.send_initial_metadata(headers[:1])
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error", extra={"method": method})
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                _response_headers.reset(token)
                if not method.startswith("/grpc.health."):
                    elapsed = time.perf_counter() - started
                    RPC_REQUESTS.labels(method, code.name).inc()
                    RPC_DURATION.labels(method).observe(elapsed)
                    log.info(
                        "rpc",
                        extra={
                            "method": method,
                            "code": code.name,
                            "duration_ms": round(elapsed * 1000, 2),
                        },
                    )

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
