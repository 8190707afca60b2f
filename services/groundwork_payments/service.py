"""gRPC entrypoint of payments."""

from __future__ import annotations

import uuid

import asyncpg

from groundwork.payments.v1 import payments_pb2 as pb
from groundwork.payments.v1 import payments_pb2_grpc
from groundwork_payments import domain, repository
from groundwork_payments.domain import ChargeStatus
from groundwork_payments.provider import Network
from groundwork_shared import idempotency
from groundwork_shared.caller import Context


class PaymentsService(payments_pb2_grpc.PaymentsServiceServicer):
    def __init__(self, pool: asyncpg.Pool, network: Network) -> None:
        self._pool = pool
        self._network = network

    async def Charge(self, request: pb.ChargeRequest, context: Context) -> pb.ChargeResult:
        domain.check_charge(
            request.amount_cents, request.currency, request.order_id, request.card_token
        )

        async def write(conn: asyncpg.Connection) -> pb.ChargeResult:
            # The network call happens inside the key's transaction: a concurrent
            # retry with the same key waits here and then returns this outcome.
            outcome = await self._network.authorize(request.card_token)
            if outcome.approved and await repository.order_paid(conn, request.order_id):
                raise domain.OrderAlreadyPaid(request.order_id)
            charge = repository.Charge(
                uuid.uuid4(),
                request.order_id,
                request.amount_cents,
                request.currency,
                ChargeStatus.APPROVED if outcome.approved else ChargeStatus.DECLINED,
                outcome.reason,
            )
            await repository.record(conn, charge)
            return pb.ChargeResult(
                charge_id=str(charge.charge_id),
                status=pb.CHARGE_STATUS_APPROVED if outcome.approved else pb.CHARGE_STATUS_DECLINED,
                decline_reason=outcome.reason,
            )

        async with self._pool.acquire() as conn:
            return await idempotency.once(
                conn, "booking:Charge", request.idempotency_key, request, pb.ChargeResult, write
            )
