"""The rate limit service against real Redis: exact under concurrency, Envoy's
response shape when over the limit, and an error (not an answer) when Redis is
gone, so the edge's failure mode decides."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from envoy.service.ratelimit.v3 import rls_pb2
from redis.asyncio import Redis

from groundwork_ratelimit.domain import Limit
from groundwork_ratelimit.repository import Counter, OpenStreams
from groundwork_ratelimit.service import RateLimitService
from groundwork_shared.errors import Unavailable

Code = rls_pb2.RateLimitResponse.Code


class _Context:
    """ShouldRateLimit reads nothing from its context."""


def _request(user: str) -> rls_pb2.RateLimitRequest:
    entry = ratelimit_pb2.RateLimitDescriptor.Entry(key="user", value=user)
    return rls_pb2.RateLimitRequest(
        domain="edge", descriptors=[ratelimit_pb2.RateLimitDescriptor(entries=[entry])]
    )


@pytest.fixture
async def service(redis_server: str) -> RateLimitService:
    redis = Redis.from_url(redis_server)
    return RateLimitService(
        Counter(redis), {"user": Limit("per_user", 20, "MINUTE")}, OpenStreams(redis)
    )


async def test_exactly_the_limit_passes_under_concurrency(service: RateLimitService) -> None:
    user = str(uuid.uuid4())
    replies = await asyncio.gather(
        *(service.ShouldRateLimit(_request(user), _Context()) for _ in range(60))  # type: ignore[arg-type]
    )
    codes = [r.overall_code for r in replies]
    assert codes.count(Code.OK) == 20
    assert codes.count(Code.OVER_LIMIT) == 40
    over = next(r for r in replies if r.overall_code == Code.OVER_LIMIT)
    assert over.response_headers_to_add[0].key == "retry-after"
    assert 0 < int(over.response_headers_to_add[0].value) <= 60
    assert over.statuses[0].current_limit.requests_per_unit == 20
    assert over.statuses[0].limit_remaining == 0
    # Another user has a budget of their own.
    other = await service.ShouldRateLimit(_request("someone-else"), _Context())  # type: ignore[arg-type]
    assert other.overall_code == Code.OK


async def test_unknown_descriptors_are_not_limited(service: RateLimitService) -> None:
    entry = ratelimit_pb2.RateLimitDescriptor.Entry(key="path", value="/x")
    request = rls_pb2.RateLimitRequest(
        domain="edge", descriptors=[ratelimit_pb2.RateLimitDescriptor(entries=[entry])]
    )
    reply = await service.ShouldRateLimit(request, _Context())  # type: ignore[arg-type]
    assert reply.overall_code == Code.OK


async def test_redis_down_is_an_error_for_the_edge_to_judge() -> None:
    dead = Redis.from_url("redis://127.78.2.99:6379/0", socket_connect_timeout=0.5)
    service = RateLimitService(
        Counter(dead), {"user": Limit("per_user", 20, "MINUTE")}, OpenStreams(dead)
    )
    with pytest.raises(Unavailable):
        await service.ShouldRateLimit(_request("u"), _Context())  # type: ignore[arg-type]


async def test_a_window_expires_with_its_window(redis_server: str) -> None:
    """The counter of a window carries an expiry from its first hit (a window
    whose expiry were lost would keep its count forever), set once, not moved."""
    redis = Redis.from_url(redis_server)
    counter = Counter(redis)
    limit = Limit("per_user", 20, "MINUTE")
    identity = f"user={uuid.uuid4()}"
    first = await counter.hit("edge", identity, limit)
    keys = [k async for k in redis.scan_iter(f"rl:edge:{identity}:*")]
    assert len(keys) == 1 and first.count == 1
    ttl = await redis.ttl(keys[0])
    assert 0 < ttl <= 61
    await redis.expire(keys[0], 30)  # a later hit must not reset the expiry
    second = await counter.hit("edge", identity, limit, hits=3)
    assert second.count == 4
    assert 0 < await redis.ttl(keys[0]) <= 30


def _stream(kind: str, client: str, stream: str, most: int = 3) -> rls_pb2.RateLimitRequest:
    entries = [("websocket", kind), ("remote_address", client), ("stream", stream)]
    if kind == "open":
        entries += [("most", str(most)), ("lifetime", "3600")]
    descriptor = ratelimit_pb2.RateLimitDescriptor(
        entries=[ratelimit_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in entries]
    )
    return rls_pb2.RateLimitRequest(domain="edge", descriptors=[descriptor])


async def test_open_streams_are_capped_per_client_and_a_close_frees_one(
    service: RateLimitService,
) -> None:
    client = f"127.0.0.{uuid.uuid4().int % 200 + 2}-{uuid.uuid4().hex[:6]}"
    ids = [f"s{i}" for i in range(10)]
    replies = await asyncio.gather(
        *(service.ShouldRateLimit(_stream("open", client, i), _Context()) for i in ids)  # type: ignore[arg-type]
    )
    opened = [i for i, r in zip(ids, replies, strict=True) if r.overall_code == Code.OK]
    assert len(opened) == 3, [r.overall_code for r in replies]
    # The same stream id again is never a free slot; another client has its own.
    again = await service.ShouldRateLimit(_stream("open", client, opened[0]), _Context())  # type: ignore[arg-type]
    assert again.overall_code == Code.OVER_LIMIT
    other = await service.ShouldRateLimit(_stream("open", client + "x", "s0"), _Context())  # type: ignore[arg-type]
    assert other.overall_code == Code.OK
    # A close frees one slot, and only one; closing twice frees nothing more.
    for _ in range(2):
        await service.ShouldRateLimit(_stream("close", client, opened[0]), _Context())  # type: ignore[arg-type]
    codes = [
        (await service.ShouldRateLimit(_stream("open", client, f"n{i}"), _Context())).overall_code  # type: ignore[arg-type]
        for i in range(2)
    ]
    assert codes == [Code.OK, Code.OVER_LIMIT]


async def test_a_stream_descriptor_is_never_counted_as_a_rate(redis_server: str) -> None:
    """Its remote_address entry is not a public write's, which the service limits
    by that key (here to one a minute)."""
    redis = Redis.from_url(redis_server)
    service = RateLimitService(
        Counter(redis), {"remote_address": Limit("writes", 1, "MINUTE")}, OpenStreams(redis)
    )
    client = f"10.0.0.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    for stream in ("a", "b", ""):  # the last has no stream id: not counted, not refused
        reply = await service.ShouldRateLimit(_stream("open", client, stream), _Context())  # type: ignore[arg-type]
        assert reply.overall_code == Code.OK, stream
