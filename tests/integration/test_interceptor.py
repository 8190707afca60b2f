"""The common interceptor on a real gRPC server: a dependency that cannot be
reached makes the call UNAVAILABLE (retryable, 503 through the edge), any other
unexpected failure INTERNAL, and neither leaks what failed; a response already
serialized is sent as it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from groundwork_shared.interceptors import UnaryInterceptor
from groundwork_shared.messages import Serialized

SERVICE = "groundwork.test.v1.Probe"


async def _relay(request: StringValue, context: Any) -> StringValue:
    """Asks a server on a port nothing listens on."""
    async with grpc.aio.insecure_channel("127.78.10.1:9") as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/Relay",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        reply: StringValue = await call(request, timeout=5)
        return reply


async def _fail(request: StringValue, context: Any) -> StringValue:
    raise KeyError("secret detail")


async def _stored(request: StringValue, context: Any) -> Serialized:
    """A cache entry's bytes: sent unparsed, they must reach the client whole."""
    return Serialized(StringValue(value=f"stored {request.value}").SerializeToString())


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )
        for name, behaviour in (("Relay", _relay), ("Fail", _fail), ("Stored", _stored))
    }
    server = grpc.aio.server(interceptors=[UnaryInterceptor()])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    port = server.add_insecure_port("127.78.10.2:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.78.10.2:{port}") as opened:
            yield opened
    finally:
        await server.stop(None)


async def _call(channel: grpc.aio.Channel, method: str) -> grpc.aio.AioRpcError:
    call = channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(StringValue(value="x"), timeout=10)
    return info.value


async def test_an_unreachable_dependency_is_unavailable_not_internal(
    channel: grpc.aio.Channel,
) -> None:
    error = await _call(channel, "Relay")
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    details = error.details() or ""
    assert details.startswith("a service this call needs is unavailable")
    assert "127.78.10.1" not in details


async def test_any_other_failure_is_internal_and_says_nothing_of_it(
    channel: grpc.aio.Channel,
) -> None:
    error = await _call(channel, "Fail")
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in (error.details() or "")


async def test_a_serialized_response_is_sent_as_it_is(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary(
        f"/{SERVICE}/Stored",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    assert await call(StringValue(value="x"), timeout=10) == StringValue(value="stored x")
