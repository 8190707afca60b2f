"""Run one catalog instance: python -m groundwork_catalog"""

from __future__ import annotations

from functools import partial

from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_catalog import SERVICE_NAME
from groundwork_catalog.service import CatalogService
from groundwork_catalog.settings import CatalogSettings
from groundwork_catalog.workers import SeatMapProjection
from groundwork_shared.bus import Consumer, ConsumerConfig, stream_head
from groundwork_shared.cache import Cache
from groundwork_shared.database import create_pool, reachable
from groundwork_shared.redis import connect
from groundwork_shared.server import App, run, serve
from groundwork_shared.settings import boot

BOOKING_STREAM = "booking"


async def main() -> None:
    settings = boot("catalog", CatalogSettings)
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    # The cache is optional: without GROUNDWORK_REDIS_URL every read goes to Postgres.
    redis = connect(settings.redis_url) if settings.redis_url else None
    # Reads get a client of their own, with a short timeout (the bus's blocks for 1 s).
    reads = connect(settings.redis_url, settings.cache_timeout_seconds) if redis else None
    cache = Cache(reads, "catalog") if reads else None
    consumers = []
    booking_head = None
    if redis:
        booking_head = partial(stream_head, redis, BOOKING_STREAM)
        # Both instances share the "catalog" group, one consuming at a time (the other
        # stands by): seat events are applied in stream order, so the availability's
        # version (a stream position) covers everything before it.
        config = ConsumerConfig(
            stream=BOOKING_STREAM, group="catalog", consumer=settings.instance_id, exclusive=True
        )
        projection = SeatMapProjection(Cache(redis, "catalog"))
        consumers.append(Consumer(redis, pool, config, projection.apply).run)
    service = CatalogService(pool, cache, settings, booking_head)

    await serve(
        settings,
        App(
            service_names=[SERVICE_NAME],
            register=lambda server: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(
                service, server
            ),
            probes=[reachable(pool)],
            workers=consumers,
            on_close=[pool.close, *([redis.aclose, reads.aclose] if redis and reads else [])],
        ),
    )


if __name__ == "__main__":
    run(main())
