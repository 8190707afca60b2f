"""Run one waiting room instance: python -m groundwork_waitingroom"""

from __future__ import annotations

import grpc

from groundwork.waitingroom.v1 import admission_pb2_grpc, waitingroom_pb2_grpc
from groundwork_shared.ed25519 import Signer
from groundwork_shared.redis import connect
from groundwork_shared.server import App, run, serve
from groundwork_shared.settings import boot
from groundwork_waitingroom import SERVICE_NAME
from groundwork_waitingroom.booking_latency import BookingLatency
from groundwork_waitingroom.repository import Rooms
from groundwork_waitingroom.service import AdmissionService, WaitingRoomService
from groundwork_waitingroom.settings import WaitingRoomSettings
from groundwork_waitingroom.tokens import Issuer
from groundwork_waitingroom.workers import Adaptation, Admission


async def main() -> None:
    settings = boot("waitingroom", WaitingRoomSettings)
    signer = Signer.from_base64(
        settings.admission_signing_key, "admission", "GROUNDWORK_ADMISSION_SIGNING_KEY"
    )
    redis = connect(settings.redis_url)
    rooms = Rooms(redis)
    latency = BookingLatency(settings.booking_metrics_urls())
    issuer = Issuer(signer, settings.admission_issuer, settings.admission_audience)
    service = WaitingRoomService(rooms, issuer)
    admissions = AdmissionService(rooms)
    admission = Admission(rooms, redis, settings.waitingroom_tick_seconds)
    adaptation = Adaptation(rooms, latency, settings.waitingroom_adapt_seconds)

    def register(server: grpc.aio.Server) -> None:
        waitingroom_pb2_grpc.add_WaitingRoomServiceServicer_to_server(service, server)
        admission_pb2_grpc.add_AdmissionServiceServicer_to_server(admissions, server)

    async def ping() -> None:
        await redis.ping()

    await serve(
        settings,
        App(
            service_names=[SERVICE_NAME],
            register=register,
            probes=[ping],
            workers=[admission.run, adaptation.run],
            on_close=[latency.close, redis.aclose],
        ),
    )


if __name__ == "__main__":
    run(main())
