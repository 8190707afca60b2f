"""Booking events -> the live updates clients see, each under its topic: the seat
map of one event ("seats:<event_id>", public) or one user's orders
("orders:<user_id>", that user only). Pure: no I/O."""

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


def seats_topic(event_id: str) -> str:
    return f"seats:{event_id}"


def orders_topic(user_id: str) -> str:
    return f"orders:{user_id}"


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


def _seats(event_id: str, seat_ids: Any, state: pb.SeatState.ValueType) -> pb.SeatsChanged:
    return pb.SeatsChanged(event_id=event_id, seat_ids=seat_ids, state=state)


def _held(p: events_pb2.SeatsHeld) -> list[tuple[str, Message]]:
    return [(seats_topic(p.event_id), _seats(p.event_id, p.seat_ids, pb.SEAT_STATE_HELD))]


def _released(p: events_pb2.SeatsReleased) -> list[tuple[str, Message]]:
    return [(seats_topic(p.event_id), _seats(p.event_id, p.seat_ids, pb.SEAT_STATE_AVAILABLE))]


def _created(p: events_pb2.OrderCreated) -> list[tuple[str, Message]]:
    order = pb.OrderChanged(
        order_id=p.order_id,
        event_id=p.event_id,
        status=booking_pb2.ORDER_STATUS_PENDING_PAYMENT,
        seat_ids=p.seat_ids,
        amount_cents=p.amount_cents,
    )
    return [(orders_topic(p.user_id), order)]


def _paid(p: events_pb2.OrderPaid) -> list[tuple[str, Message]]:
    order = pb.OrderChanged(
        order_id=p.order_id,
        event_id=p.event_id,
        status=booking_pb2.ORDER_STATUS_PAID,
        seat_ids=p.seat_ids,
        amount_cents=p.amount_cents,
    )
    return [
        (seats_topic(p.event_id), _seats(p.event_id, p.seat_ids, pb.SEAT_STATE_SOLD)),
        (orders_topic(p.user_id), order),
    ]


def _cancelled(p: events_pb2.OrderCancelled) -> list[tuple[str, Message]]:
    order = pb.OrderChanged(
        order_id=p.order_id, event_id=p.event_id, status=booking_pb2.ORDER_STATUS_CANCELLED
    )
    return [(orders_topic(p.user_id), order)]


# event type -> (payload message, its updates by topic)
_ROUTES: dict[str, tuple[type[Message], Callable[[Any], list[tuple[str, Message]]]]] = {
    "booking.seats_held": (events_pb2.SeatsHeld, _held),
    "booking.seats_released": (events_pb2.SeatsReleased, _released),
    "booking.order_created": (events_pb2.OrderCreated, _created),
    "booking.order_paid": (events_pb2.OrderPaid, _paid),
    "booking.order_cancelled": (events_pb2.OrderCancelled, _cancelled),
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
    routed = []
    for topic, body in build(payload):
        update = pb.LiveUpdate(id=position, time=event.time)
        if isinstance(body, pb.SeatsChanged):
            update.seats.CopyFrom(body)
        else:
            assert isinstance(body, pb.OrderChanged)
            update.order.CopyFrom(body)
        routed.append(Routed(topic, update))
    return routed
