"""An event's type is derived from its payload's message, by producers and
consumers alike."""

from __future__ import annotations

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from groundwork.booking.v1 import events_pb2
from groundwork.waitingroom.v1 import waitingroom_pb2
from groundwork_catalog.workers import TRANSITIONS
from groundwork_shared.events import envelope_for, event_type


def test_a_type_is_the_package_and_the_message_in_snake_case() -> None:
    assert event_type(events_pb2.SeatsHeld) == "booking.seats_held"
    assert event_type(events_pb2.OrderCancelled()) == "booking.order_cancelled"
    assert event_type(waitingroom_pb2.QueueProgress) == "waitingroom.queue_progress"


def test_a_message_outside_the_project_is_no_event() -> None:
    with pytest.raises(ValueError, match=r"google\.protobuf\.StringValue"):
        event_type(StringValue)


def test_what_a_producer_publishes_is_what_a_consumer_looks_up() -> None:
    paid = envelope_for("order-1", events_pb2.OrderPaid(order_id="order-1"))
    assert paid.type in TRANSITIONS and paid.aggregate_id == "order-1"
    unpacked = events_pb2.OrderPaid()
    assert paid.payload.Unpack(unpacked) and unpacked.order_id == "order-1"
