"""The waiting room's word on a customer's session, through this instance's
sidecar (the internal AdmissionService; the edge routes none of it)."""

from __future__ import annotations

import uuid

import grpc

from groundwork.waitingroom.v1 import admission_pb2, admission_pb2_grpc
from groundwork_booking.domain import RoomSession
from groundwork_shared import mesh
from groundwork_shared.errors import Unavailable


class WaitingRoom:
    def __init__(self, outbound: str, timeout: float = 2.0) -> None:
        self._channel = mesh.channel(outbound, "waitingroom")
        self._stub = admission_pb2_grpc.AdmissionServiceStub(self._channel)
        self._timeout = timeout

    async def session(self, event_id: uuid.UUID, user_id: str) -> RoomSession:
        """Fails closed: when the room cannot answer, no hold goes through
        unchecked (UNAVAILABLE, which a client retries)."""
        request = admission_pb2.CheckAdmissionRequest(event_id=str(event_id), user_id=user_id)
        try:
            status = await self._stub.CheckAdmission(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise Unavailable("the waiting room cannot say who is admitted; retry") from error
        return RoomSession(status.queued, status.admitted)

    async def close(self) -> None:
        await self._channel.close()
