"""gRPC entrypoint of ticketing."""

from __future__ import annotations

import asyncpg
from google.api import httpbody_pb2

from groundwork.ticketing.v1 import ticketing_pb2 as pb
from groundwork.ticketing.v1 import ticketing_pb2_grpc
from groundwork_shared.caller import Context, caller
from groundwork_shared.messages import timestamp
from groundwork_ticketing import repository
from groundwork_ticketing.signing import TicketSigner


class TicketingService(ticketing_pb2_grpc.TicketingServiceServicer):
    def __init__(self, pool: asyncpg.Pool, signer: TicketSigner) -> None:
        self._pool = pool
        self._signer = signer

    async def GetMyTickets(
        self, request: pb.GetMyTicketsRequest, context: Context
    ) -> pb.GetMyTicketsResponse:
        who = caller(context)
        async with self._pool.acquire() as conn:
            found = await repository.tickets_of(conn, who.user_id)
        tickets = [
            pb.Ticket(
                ticket_id=str(t.ticket_id),
                order_id=t.order_id,
                event_id=t.event_id,
                seat_id=t.seat_id,
                token=t.token,
                issued_at=timestamp(t.issued_at),
            )
            for t in found
        ]
        return pb.GetMyTicketsResponse(tickets=tickets)

    async def GetTicketKeys(
        self, request: pb.GetTicketKeysRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        body = self._signer.jwks()
        return httpbody_pb2.HttpBody(content_type="application/json", data=body)
