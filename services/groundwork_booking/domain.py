"""Booking rules with no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from groundwork_shared.errors import Aborted, FailedPrecondition, PermissionDenied, Violations
from groundwork_shared.ids import canonical_or_violation

MAX_SEATS = 10


class HoldStatus(StrEnum):
    """A hold's states (the values are the database's)."""

    ACTIVE = "active"
    RELEASED = "released"  # by its customer
    EXPIRED = "expired"  # by the sweeper, past its time
    CONVERTED = "converted"  # into an order


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    CANCELLED = "cancelled"  # unpaid past its deadline


@dataclass(frozen=True)
class SeatPrice:
    seat_id: str
    price_cents: int
    currency: str


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
    event = canonical_or_violation(problems, "event_id", event_id)
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


class AdmissionRequired(PermissionDenied):
    reason = "ADMISSION_REQUIRED"


class AdmissionMismatch(PermissionDenied):
    reason = "ADMISSION_MISMATCH"


class AdmissionEnded(PermissionDenied):
    reason = "ADMISSION_ENDED"


@dataclass(frozen=True)
class AdmissionToken:
    """The claims of the admission token the edge verified (signature, issuer,
    audience, expiry): whom and which event the waiting room admitted."""

    user_id: str
    event_id: str


@dataclass(frozen=True)
class RoomSession:
    """What the waiting room says now: does the event queue, and is the
    customer's session live (admitted, claimed, not ended)."""

    queued: bool
    admitted: bool


def check_admission(
    event_id: uuid.UUID, user_id: str, token: AdmissionToken | None, room: RoomSession
) -> None:
    """A queued event's hold needs the caller's own token for this event and a
    live session. Decided on the parsed request (the canonical id booking holds
    seats of), so no other spelling or encoding of it can reach a different
    answer; the token alone is not enough (leaving, the session's end or a room
    reset end an admission before its token expires)."""
    if not room.queued:
        return
    if token is None:
        raise AdmissionRequired(
            f"event {event_id} is queued: join its waiting room (POST /v1/events/{event_id}"
            "/queue) and send the admission token in x-groundwork-admission"
        )
    if token.event_id != str(event_id) or token.user_id != user_id:
        raise AdmissionMismatch("the admission token is for another event or another customer")
    if not room.admitted:
        raise AdmissionEnded(
            "this admission's session has ended (left, expired or the room was reset): "
            f"join the queue again (POST /v1/events/{event_id}/queue)"
        )


def needs_payment(status: OrderStatus, pay_by: datetime, now: datetime) -> bool:
    """Whether an order is to be charged now: False when it is paid already (a
    repeated pay answers it as it is); refused when it can no longer be paid."""
    if status is OrderStatus.PAID:
        return False
    if status is not OrderStatus.PENDING_PAYMENT:
        raise HoldNotActive(f"order is {status}")
    if pay_by <= now:
        raise HoldNotActive("the payment deadline has passed")
    return True
