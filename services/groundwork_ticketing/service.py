"""gRPC entrypoint of ticketing."""

from __future__ import annotations

import asyncpg
from google.api import httpbody_pb2

from groundwork.ticketing.v1 import ticketing_pb2 as pb
from groundwork.ticketing.v1 import ticketing_pb2_grpc
from groundwork_shared.caller import Context, caller
from groundwork_shared.messages import timestamp
from groundwork_ticketing.signing import TicketSigner


class TicketingService(ticketing_pb2_grpc.TicketingServiceServicer):
    def __init__(self, pool: asyncpg.Pool, signer: TicketSigner) -> None:
        self._pool = pool
        self._signer = signer

    async def GetMyTickets(
        self, request: pb.GetMyTicketsRequest, context: Context
    ) -> pb.GetMyTicketsResponse:
        who = caller(context)
        rows = await self._pool.fetch(
            """SELECT ticket_id, order_id, event_id, seat_id, token, issued_at FROM tickets
               WHERE user_id = $1 ORDER BY issued_at DESC, seat_id LIMIT 500""",
            who.user_id,
        )
        tickets = []
        for r in rows:
            tickets.append(
                pb.Ticket(
                    ticket_id=str(r["ticket_id"]),
                    order_id=r["order_id"],
                    event_id=r["event_id"],
                    seat_id=r["seat_id"],
                    token=r["token"],
                    issued_at=timestamp(r["issued_at"]),
                )
            )
        return pb.GetMyTicketsResponse(tickets=tickets)

    async def GetTicketKeys(
        self, request: pb.GetTicketKeysRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        body = self._signer.jwks()
        return httpbody_pb2.HttpBody(content_type="application/json", data=body)
