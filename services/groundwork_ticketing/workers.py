"""order_paid -> one ticket per seat. Runs inside the bus consumer's transaction,
which also records the event id: applied exactly once, even when redelivered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from groundwork.booking.v1 import events_pb2
from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared.events import event_type
from groundwork_ticketing import repository
from groundwork_ticketing.signing import TicketSigner

ORDER_PAID = event_type(events_pb2.OrderPaid)


class TicketIssuer:
    def __init__(self, signer: TicketSigner) -> None:
        self._signer = signer

    async def apply(self, conn: asyncpg.Connection, event: Envelope, position: str) -> None:
        if event.type != ORDER_PAID:
            return
        paid = events_pb2.OrderPaid()
        event.payload.Unpack(paid)
        now = datetime.now(UTC)
        for seat_id in paid.seat_ids:
            ticket_id = str(uuid.uuid4())
            token = self._signer.token(
                ticket_id=ticket_id,
                order_id=paid.order_id,
                event_id=paid.event_id,
                seat_id=seat_id,
                holder=paid.user_id,
                issued_at=now,
            )
            ticket = repository.Ticket(
                uuid.UUID(ticket_id),
                paid.order_id,
                paid.user_id,
                paid.event_id,
                seat_id,
                token,
                now,
            )
            await repository.issue(conn, ticket)
