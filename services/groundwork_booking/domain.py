"""Booking rules with no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from groundwork_shared.errors import Aborted, FailedPrecondition, Violations

MAX_SEATS = 10


class SeatsUnavailable(FailedPrecondition):
    """Some requested seats are held or sold by someone else (or do not exist)."""


class HoldNotActive(FailedPrecondition):
    """The hold was released, expired or already turned into an order."""


class PaymentDeclined(FailedPrecondition):
    """The card was declined; the order stays payable with another card."""


class PaymentInProgress(Aborted):
    """Another payment of the same order was charged and is being recorded."""


@dataclass(frozen=True)
class HoldRequest:
    event_id: uuid.UUID
    seat_ids: tuple[str, ...]


def hold_request(event_id: str, seat_ids: list[str]) -> HoldRequest:
    problems = Violations()
    try:
        event = uuid.UUID(event_id)
    except ValueError:
        problems.add("event_id", "must be a UUID")
        event = uuid.UUID(int=0)
    if not 1 <= len(seat_ids) <= MAX_SEATS:
        problems.add("seat_ids", f"1 to {MAX_SEATS} seats")
    elif len(set(seat_ids)) != len(seat_ids):
        problems.add("seat_ids", "each seat once")
    elif any(not s or len(s) > 64 for s in seat_ids):
        problems.add("seat_ids", "seat ids are 1 to 64 characters")
    problems.raise_if_any()
    # Sorted: every transaction locks seat rows in the same order, so two holds
    # over overlapping seats cannot deadlock.
    return HoldRequest(event, tuple(sorted(seat_ids)))
