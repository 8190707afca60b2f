"""A buyer's view of a seat map: the layout's seat order and the seats an
availability read shows free. Apart from the Locust users (no gevent here), so
it is unit-tested on its own."""

from __future__ import annotations

import base64
from typing import Any

from groundwork_catalog.availability import state_of
from groundwork_catalog.domain import SeatStatus, seat_id


def seat_order(layout: dict[str, Any]) -> list[str]:
    """Seat ids in layout order: the index of each seat's two bits."""
    order: dict[int, str] = {}
    for section in layout["sections"]:
        for row in section["rows"]:
            for offset, number in enumerate(row["numbers"]):
                index = int(row["first_index"]) + offset
                order[index] = seat_id(section["name"], row["label"], int(number))
    return [order[i] for i in range(len(order))]


def available(availability: dict[str, Any], seats: list[str], wanted: int) -> list[str]:
    """The first `wanted` available seats in layout order. A buyer needs only the
    front of the map: unpacking all of a 5,000-seat read cost the load generator
    about a millisecond a read, on the cores the mesh under test runs on."""
    states = base64.b64decode(availability["states"])
    found: list[str] = []
    for index, seat in enumerate(seats):
        if len(found) == wanted:
            break
        if state_of(states, index) is SeatStatus.AVAILABLE:
            found.append(seat)
    return found
