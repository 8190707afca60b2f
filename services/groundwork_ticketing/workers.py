"""order_paid -> one ticket per seat. Runs inside the bus consumer's transaction,
which also records the event id: applied exactly once, even when redelivered."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from groundwork.booking.v1 import events_pb2
from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared.events import event_type
from groundwork_ticketing import domain, repository
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
        tickets = domain.tickets_for(
            paid.order_id,
            paid.user_id,
            paid.event_id,
            paid.seat_ids,
            self._signer.sign,
            datetime.now(UTC),
        )
        for ticket in tickets:
            await repository.issue(conn, ticket)
