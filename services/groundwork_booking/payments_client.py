"""Charges through this instance's sidecar to the payments service."""

from __future__ import annotations

import grpc

from groundwork.payments.v1 import payments_pb2, payments_pb2_grpc
from groundwork_booking.domain import PaymentInProgress
from groundwork_shared import mesh
from groundwork_shared.errors import Unavailable


class Payments:
    def __init__(self, outbound: str, timeout: float = 5.0) -> None:
        self._channel = mesh.channel(outbound, "payments")
        self._stub = payments_pb2_grpc.PaymentsServiceStub(self._channel)
        self._timeout = timeout

    async def charge(self, request: payments_pb2.ChargeRequest) -> payments_pb2.ChargeResult:
        try:
            return await self._stub.Charge(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(
                    "payment provider unavailable; retry with the same idempotency key"
                ) from error
            if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                # Charged already, under another idempotency key: a concurrent pay.
                raise PaymentInProgress(
                    "this order was paid by another request; get the order to see it"
                ) from error
            raise

    async def close(self) -> None:
        await self._channel.close()
