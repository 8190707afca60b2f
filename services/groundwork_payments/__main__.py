"""Run one payments instance: python -m groundwork_payments"""

from __future__ import annotations

from groundwork.payments.v1 import payments_pb2_grpc
from groundwork_payments import SERVICE_NAME
from groundwork_payments.provider import Network, PaymentsSettings
from groundwork_payments.service import PaymentsService
from groundwork_shared.database import create_pool, reachable
from groundwork_shared.server import App, run, serve
from groundwork_shared.settings import boot


async def main() -> None:
    settings = boot("payments", PaymentsSettings)
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    service = PaymentsService(pool, Network(settings))

    await serve(
        settings,
        App(
            service_names=[SERVICE_NAME],
            register=lambda server: payments_pb2_grpc.add_PaymentsServiceServicer_to_server(
                service, server
            ),
            probes=[reachable(pool)],
            on_close=[pool.close],
        ),
    )


if __name__ == "__main__":
    run(main())
