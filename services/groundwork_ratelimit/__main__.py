"""Run one rate limit instance: python -m groundwork_ratelimit"""

from __future__ import annotations

from envoy.service.ratelimit.v3 import rls_pb2_grpc

from groundwork_ratelimit import SERVICE_NAME
from groundwork_ratelimit.domain import limits_from
from groundwork_ratelimit.repository import Counter, OpenStreams
from groundwork_ratelimit.service import RateLimitService
from groundwork_ratelimit.settings import RateLimitSettings
from groundwork_shared.redis import connect
from groundwork_shared.server import App, run, serve
from groundwork_shared.settings import boot


async def main() -> None:
    settings = boot("ratelimit", RateLimitSettings)
    redis = connect(settings.redis_url)
    service = RateLimitService(
        Counter(redis),
        limits_from(settings.ratelimit_user_per_minute, settings.ratelimit_auth_per_minute),
        OpenStreams(redis),
    )

    await serve(
        settings,
        App(
            service_names=[SERVICE_NAME],
            register=lambda server: rls_pb2_grpc.add_RateLimitServiceServicer_to_server(
                service, server
            ),
            # Not a readiness probe: with Redis down the edge's failure mode decides,
            # and it can only do that if this service still answers.
            probes=[],
            on_close=[redis.aclose],
        ),
    )


if __name__ == "__main__":
    run(main())
