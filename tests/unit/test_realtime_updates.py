"""Which booking events become which live updates, and the per-client queue bound."""

from __future__ import annotations

import pytest
from google.protobuf import any_pb2

from groundwork.booking.v1 import booking_pb2, events_pb2
from groundwork.realtime.v1 import realtime_pb2 as pb
from groundwork_realtime.hub import Hub
from groundwork_realtime.updates import Routed, orders_topic, route, seats_topic
from groundwork_shared import positions
from groundwork_shared.events import envelope


def test_seat_events_update_that_events_seat_map() -> None:
    held = route(
        "1-0",
        envelope(
            "booking.seats_held",
            "e1",
            events_pb2.SeatsHeld(event_id="e1", hold_id="h", seat_ids=["A-1", "A-2"]),
        ),
    )
    released = route(
        "2-0",
        envelope(
            "booking.seats_released",
            "e1",
            events_pb2.SeatsReleased(event_id="e1", seat_ids=["A-2"], reason="expired"),
        ),
    )
    assert [
        (r.topic, r.update.seats.state, list(r.update.seats.seat_ids)) for r in held + released
    ] == [
        (seats_topic("e1"), pb.SEAT_STATE_HELD, ["A-1", "A-2"]),
        (seats_topic("e1"), pb.SEAT_STATE_AVAILABLE, ["A-2"]),
    ]
    assert held[0].update.id == "1-0"


def test_a_paid_order_sells_seats_and_tells_its_owner() -> None:
    paid = route(
        "3-1",
        envelope(
            "booking.order_paid",
            "o1",
            events_pb2.OrderPaid(
                order_id="o1", event_id="e1", user_id="ann", seat_ids=["A-1"], amount_cents=900
            ),
        ),
    )
    assert [r.topic for r in paid] == [seats_topic("e1"), orders_topic("ann")]
    assert paid[0].update.seats.state == pb.SEAT_STATE_SOLD
    assert paid[1].update.order.status == booking_pb2.ORDER_STATUS_PAID
    assert paid[1].update.order.amount_cents == 900


def test_order_lifecycle_goes_to_the_owner_only() -> None:
    created = route(
        "4-0",
        envelope(
            "booking.order_created", "o1", events_pb2.OrderCreated(order_id="o1", user_id="ann")
        ),
    )
    cancelled = route(
        "5-0",
        envelope(
            "booking.order_cancelled", "o1", events_pb2.OrderCancelled(order_id="o1", user_id="ann")
        ),
    )
    assert [(r.topic, r.update.order.status) for r in created + cancelled] == [
        (orders_topic("ann"), booking_pb2.ORDER_STATUS_PENDING_PAYMENT),
        (orders_topic("ann"), booking_pb2.ORDER_STATUS_CANCELLED),
    ]


def test_unknown_or_mislabelled_events_show_nothing() -> None:
    assert route("6-0", envelope("booking.something_new", "x", events_pb2.SeatsHeld())) == []
    mislabelled = envelope("booking.order_paid", "x", events_pb2.SeatsHeld(event_id="e"))
    assert route("7-0", mislabelled) == []
    broken = envelope("booking.seats_held", "x", events_pb2.SeatsHeld())
    broken.payload.CopyFrom(any_pb2.Any(type_url="nonsense", value=b"\xff"))
    assert route("8-0", broken) == []


def test_an_update_is_encoded_once_in_each_format() -> None:
    (routed,) = route(
        "9-0",
        envelope("booking.seats_held", "e", events_pb2.SeatsHeld(event_id="e", seat_ids=["A-1"])),
    )
    assert routed.json is routed.json
    assert '"state": "SEAT_STATE_HELD"' in routed.json
    assert pb.LiveUpdate.FromString(routed.binary) == routed.update


async def test_a_full_queue_drops_that_client_only() -> None:
    hub = Hub(queue_size=2)
    slow, fast, elsewhere = hub.subscribe("t"), hub.subscribe("t"), hub.subscribe("u")
    for n in range(3):
        hub.dispatch(Routed("t", pb.LiveUpdate(id=f"{n}-0")))
        fast.queue.get_nowait()  # this one keeps up
    assert slow.overflowed.is_set() and not fast.overflowed.is_set()
    assert hub.dropped == 1 and hub.subscribers == 2
    assert slow.queue.qsize() == 2  # bounded: the third update was never queued
    hub.dispatch(Routed("t", pb.LiveUpdate(id="4-0")))
    assert fast.queue.qsize() == 1 and slow.queue.qsize() == 2
    assert elsewhere.queue.empty()
    hub.unsubscribe(fast)
    hub.unsubscribe(elsewhere)
    assert hub.subscribers == 0


@pytest.mark.parametrize("text", ["", "1", "1-", "-1", "a-b", "1-2-3", "1 -2", "9" * 21 + "-0"])
def test_positions_must_be_stream_ids(text: str) -> None:
    with pytest.raises(ValueError, match="stream position"):
        positions.parse(text)


def test_positions_order_numerically() -> None:
    assert positions.parse("10-0") > positions.parse("9-5") > positions.parse("9-1")
