"""envoy.service.ratelimit.v3.RateLimitService, as Envoy's ratelimit filter calls it."""

from __future__ import annotations

import logging

from envoy.config.core.v3 import base_pb2
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from google.protobuf.duration_pb2 import Duration
from redis.exceptions import RedisError

from groundwork_ratelimit.domain import STREAM_KEY, Decision, Limit, Stream, match, stream_from
from groundwork_ratelimit.repository import Counter, OpenStreams
from groundwork_shared.caller import Context
from groundwork_shared.errors import Unavailable

log = logging.getLogger(__name__)
Code = rls_pb2.RateLimitResponse.Code


def _status(decision: Decision) -> rls_pb2.RateLimitResponse.DescriptorStatus:
    return rls_pb2.RateLimitResponse.DescriptorStatus(
        code=Code.OVER_LIMIT if decision.over else Code.OK,
        current_limit=rls_pb2.RateLimitResponse.RateLimit(
            name=decision.limit.name,
            requests_per_unit=decision.limit.requests,
            unit=rls_pb2.RateLimitResponse.RateLimit.Unit.Value(decision.limit.unit),
        ),
        limit_remaining=decision.remaining,
        duration_until_reset=Duration(seconds=decision.reset_in),
    )


def _stream_status(stream: Stream, count: int) -> rls_pb2.RateLimitResponse.DescriptorStatus:
    over = stream.opening and count > stream.most
    return rls_pb2.RateLimitResponse.DescriptorStatus(
        code=Code.OVER_LIMIT if over else Code.OK,
        current_limit=rls_pb2.RateLimitResponse.RateLimit(name=stream.name),
        limit_remaining=max(0, stream.most - count),
    )


class RateLimitService(rls_pb2_grpc.RateLimitServiceServicer):  # type: ignore[misc]
    def __init__(self, counter: Counter, limits: dict[str, Limit], streams: OpenStreams) -> None:
        self._counter = counter
        self._limits = limits
        self._streams = streams

    async def ShouldRateLimit(
        self, request: rls_pb2.RateLimitRequest, context: Context
    ) -> rls_pb2.RateLimitResponse:
        statuses = []
        retry_after = 0
        try:
            for descriptor in request.descriptors:
                entries = [(e.key, e.value) for e in descriptor.entries]
                if any(key == STREAM_KEY for key, _ in entries):
                    # Never a rate (its remote_address is not a public write's).
                    stream = stream_from(entries)
                    if stream is None:
                        statuses.append(rls_pb2.RateLimitResponse.DescriptorStatus(code=Code.OK))
                        continue
                    count = await self._streams.apply(request.domain, stream)
                    statuses.append(_stream_status(stream, count))
                    continue
                found = match(entries, self._limits)
                if found is None:
                    statuses.append(rls_pb2.RateLimitResponse.DescriptorStatus(code=Code.OK))
                    continue
                limit, identity = found
                hits = (
                    descriptor.hits_addend.value
                    if descriptor.HasField("hits_addend")
                    else (request.hits_addend or 1)
                )
                decision = await self._counter.hit(request.domain, identity, limit, hits)
                statuses.append(_status(decision))
                if decision.over:
                    retry_after = max(retry_after, decision.reset_in)
        except RedisError as error:
            # Envoy's failure_mode_deny decides what an error means: open or closed.
            log.warning("rate limit store unavailable", extra={"error": repr(error)})
            raise Unavailable("rate limit store unavailable") from error
        over = any(s.code == Code.OVER_LIMIT for s in statuses)
        return rls_pb2.RateLimitResponse(
            overall_code=Code.OVER_LIMIT if over else Code.OK,
            statuses=statuses,
            response_headers_to_add=(
                [base_pb2.HeaderValue(key="retry-after", value=str(retry_after))] if over else []
            ),
        )
