"""Run one ticketing instance (API and worker): python -m groundwork_ticketing"""

from __future__ import annotations

from groundwork.ticketing.v1 import ticketing_pb2_grpc
from groundwork_shared.bus import Consumer, ConsumerConfig
from groundwork_shared.database import create_pool, reachable
from groundwork_shared.redis import connect
from groundwork_shared.server import App, run, serve
from groundwork_shared.settings import boot
from groundwork_ticketing import SERVICE_NAME
from groundwork_ticketing.service import TicketingService
from groundwork_ticketing.settings import TicketingSettings
from groundwork_ticketing.signing import TicketSigner
from groundwork_ticketing.workers import TicketIssuer


async def main() -> None:
    settings = boot("ticketing", TicketingSettings)
    signer = TicketSigner.from_settings(settings)
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    redis = connect(settings.redis_url)
    config = ConsumerConfig(stream="booking", group="ticketing", consumer=settings.instance_id)
    issuer = Consumer(redis, pool, config, TicketIssuer(signer).apply)
    service = TicketingService(pool, signer)

    await serve(
        settings,
        App(
            service_names=[SERVICE_NAME],
            register=lambda server: ticketing_pb2_grpc.add_TicketingServiceServicer_to_server(
                service, server
            ),
            probes=[reachable(pool)],
            workers=[issuer.run],
            on_close=[redis.aclose, pool.close],
        ),
    )


if __name__ == "__main__":
    run(main())
