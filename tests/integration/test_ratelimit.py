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
from groundwork_ratelimit.repository import Counter
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
    return RateLimitService(Counter(redis), {"user": Limit("per_user", 20, "MINUTE")})


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
    service = RateLimitService(Counter(dead), {"user": Limit("per_user", 20, "MINUTE")})
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
