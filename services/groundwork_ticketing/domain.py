"""Ticketing's rules and types, without I/O: one ticket per seat of a paid
order, each carrying a signed token whose claims are fixed here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ISSUER = "groundwork-ticketing"


@dataclass(frozen=True)
class Ticket:
    ticket_id: uuid.UUID
    order_id: str
    user_id: str
    event_id: str
    seat_id: str
    token: str
    issued_at: datetime


def claims(
    ticket_id: uuid.UUID, order_id: str, event_id: str, seat_id: str, holder: str, at: datetime
) -> dict[str, Any]:
    """What a ticket's token asserts: who holds which seat of which order, since when."""
    return {
        "iss": ISSUER,
        "sub": holder,
        "jti": str(ticket_id),
        "order": order_id,
        "event": event_id,
        "seat": seat_id,
        "iat": int(at.timestamp()),
    }


def tickets_for(
    order_id: str,
    user_id: str,
    event_id: str,
    seat_ids: Sequence[str],
    sign: Callable[[dict[str, Any]], str],
    now: datetime,
) -> list[Ticket]:
    """The tickets of a paid order, one per seat, each token signed by `sign`."""
    tickets = []
    for seat_id in seat_ids:
        ticket_id = uuid.uuid4()
        token = sign(claims(ticket_id, order_id, event_id, seat_id, user_id, now))
        tickets.append(Ticket(ticket_id, order_id, user_id, event_id, seat_id, token, now))
    return tickets
