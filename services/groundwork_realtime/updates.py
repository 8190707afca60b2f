"""Events -> the live updates clients see, each under its topic: the seat map of
one event ("seats:<event_id>", public), one user's orders ("orders:<user_id>",
that user only), from booking's stream; an event's waiting room
("queue:<event_id>", public), from the waiting room's. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from groundwork.booking.v1 import booking_pb2, events_pb2
from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork.realtime.v1 import realtime_pb2 as pb
from groundwork.waitingroom.v1 import waitingroom_pb2
from groundwork_shared.events import event_type


def seats_topic(event_id: str) -> str:
    return f"seats:{event_id}"


def orders_topic(user_id: str) -> str:
    return f"orders:{user_id}"


def queue_topic(event_id: str) -> str:
    return f"queue:{event_id}"


def to_json(update: pb.LiveUpdate) -> str:
    return json_format.MessageToJson(
        update,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,  # as the edge prints REST replies
        indent=None,
    )


@dataclass(frozen=True)
class Routed:
    topic: str
    update: pb.LiveUpdate

    # Encoded once however many clients of the topic receive it.
    @cached_property
    def json(self) -> str:
        return to_json(self.update)

    @cached_property
    def binary(self) -> bytes:
        return self.update.SerializeToString()


# A built update: its topic and the LiveUpdate field it sets ("seats" or "order").
Part = tuple[str, dict[str, Any]]


def _seats(p: Any, state: pb.SeatState.ValueType) -> Part:
    changed = pb.SeatsChanged(event_id=p.event_id, seat_ids=p.seat_ids, state=state)
    return seats_topic(p.event_id), {"seats": changed}


def _order(p: Any, status: booking_pb2.OrderStatus.ValueType) -> Part:
    """Order ids, event and owner are on every order event; seats and amount on most."""
    changed = pb.OrderChanged(order_id=p.order_id, event_id=p.event_id, status=status)
    if hasattr(p, "seat_ids"):
        changed.seat_ids.extend(p.seat_ids)
        changed.amount_cents = p.amount_cents
    return orders_topic(p.user_id), {"order": changed}


# event type (derived from the payload message) -> (payload message, its updates)
_ROUTES: dict[str, tuple[type[Message], Callable[[Any], list[Part]]]] = {
    event_type(message): (message, updates)
    for message, updates in (
        (events_pb2.SeatsHeld, lambda p: [_seats(p, pb.SEAT_STATE_HELD)]),
        (events_pb2.SeatsReleased, lambda p: [_seats(p, pb.SEAT_STATE_AVAILABLE)]),
        (
            events_pb2.OrderCreated,
            lambda p: [_order(p, booking_pb2.ORDER_STATUS_PENDING_PAYMENT)],
        ),
        (
            events_pb2.OrderPaid,
            lambda p: [_seats(p, pb.SEAT_STATE_SOLD), _order(p, booking_pb2.ORDER_STATUS_PAID)],
        ),
        (events_pb2.OrderCancelled, lambda p: [_order(p, booking_pb2.ORDER_STATUS_CANCELLED)]),
        (waitingroom_pb2.QueueProgress, lambda p: [(queue_topic(p.event_id), {"queue": p})]),
    )
}


def route(position: str, event: Envelope) -> list[Routed]:
    """The updates an event at stream `position` makes; none for other event types."""
    known = _ROUTES.get(event.type)
    if known is None:
        return []
    message_type, build = known
    payload = message_type()
    if not event.payload.Unpack(payload):
        return []  # a type name that does not match its payload: nothing to show
    return [
        Routed(topic, pb.LiveUpdate(id=position, time=event.time, **field))
        for topic, field in build(payload)
    ]
