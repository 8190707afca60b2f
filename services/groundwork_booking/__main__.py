"""Run one booking instance: python -m groundwork_booking"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from groundwork.booking.v1 import booking_pb2_grpc
from groundwork_booking import SERVICE_NAME
from groundwork_booking.admission_client import WaitingRoom
from groundwork_booking.catalog_client import CatalogSeats
from groundwork_booking.payments_client import Payments
from groundwork_booking.service import BookingService
from groundwork_booking.settings import BookingSettings
from groundwork_booking.workers import sweep
from groundwork_shared.database import create_pool, reachable
from groundwork_shared.outbox import Relay
from groundwork_shared.redis import connect
from groundwork_shared.server import App, run, serve
from groundwork_shared.settings import boot


async def main() -> None:
    settings = boot("booking", BookingSettings)
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    redis = connect(settings.redis_url)
    catalog = CatalogSeats(settings.mesh_outbound)
    payments = Payments(settings.mesh_outbound)
    waiting_room = WaitingRoom(settings.mesh_outbound)
    service = BookingService(
        pool,
        catalog,
        waiting_room,
        timedelta(seconds=settings.hold_ttl_seconds),
        payments,
        timedelta(seconds=settings.order_payment_seconds),
    )
    relay = Relay(pool, redis)

    async def sweeper(stop: asyncio.Event) -> None:
        await sweep(pool, stop, settings.sweep_interval_seconds)

    await serve(
        settings,
        App(
            service_names=[SERVICE_NAME],
            register=lambda server: booking_pb2_grpc.add_BookingServiceServicer_to_server(
                service, server
            ),
            probes=[reachable(pool)],
            workers=[sweeper, relay.run],
            on_close=[catalog.close, payments.close, waiting_room.close, redis.aclose, pool.close],
        ),
    )


if __name__ == "__main__":
    run(main())
