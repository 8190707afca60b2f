"""gRPC entrypoint of payments."""

from __future__ import annotations

import uuid

import asyncpg

from groundwork.payments.v1 import payments_pb2 as pb
from groundwork.payments.v1 import payments_pb2_grpc
from groundwork_payments.provider import Network
from groundwork_shared import idempotency
from groundwork_shared.caller import Context
from groundwork_shared.errors import AlreadyExists, Violations


class PaymentsService(payments_pb2_grpc.PaymentsServiceServicer):
    def __init__(self, pool: asyncpg.Pool, network: Network) -> None:
        self._pool = pool
        self._network = network

    async def Charge(self, request: pb.ChargeRequest, context: Context) -> pb.ChargeResult:
        problems = Violations()
        if request.amount_cents <= 0:
            problems.add("amount_cents", "must be positive")
        if len(request.currency) != 3:
            problems.add("currency", "an ISO 4217 code")
        if not request.order_id:
            problems.add("order_id", "required")
        if not request.card_token:
            problems.add("card_token", "required")
        problems.raise_if_any()

        async def write(conn: asyncpg.Connection) -> pb.ChargeResult:
            # The network call happens inside the key's transaction: a concurrent
            # retry with the same key waits here and then returns this outcome.
            outcome = await self._network.authorize(request.card_token)
            charge_id = uuid.uuid4()
            status = "approved" if outcome.approved else "declined"
            if outcome.approved and await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM charges WHERE order_id = $1 AND status = 'approved')",
                request.order_id,
            ):
                raise AlreadyExists(f"order {request.order_id} is already paid")
            await conn.execute(
                """INSERT INTO charges (charge_id, order_id, amount_cents, currency, status,
                                        decline_reason) VALUES ($1, $2, $3, $4, $5, $6)""",
                charge_id,
                request.order_id,
                request.amount_cents,
                request.currency,
                status,
                outcome.reason,
            )
            return pb.ChargeResult(
                charge_id=str(charge_id),
                status=pb.CHARGE_STATUS_APPROVED if outcome.approved else pb.CHARGE_STATUS_DECLINED,
                decline_reason=outcome.reason,
            )

        async with self._pool.acquire() as conn:
            return await idempotency.once(
                conn, "booking:Charge", request.idempotency_key, request, pb.ChargeResult, write
            )
