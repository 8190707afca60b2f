"""The flash buyer's view of a seat map: layout order and the free seats at the
front of an availability read, against the catalog's own packing."""

from __future__ import annotations

import base64

from groundwork_catalog.availability import pack
from groundwork_catalog.domain import SeatStatus
from groundwork_loadtest.seats import available, seat_order

A, H, S = SeatStatus.AVAILABLE, SeatStatus.HELD, SeatStatus.SOLD


def _read(statuses: list[SeatStatus]) -> dict[str, str]:
    return {"states": base64.b64encode(pack(statuses)).decode()}


def test_seat_order_follows_each_rows_first_index() -> None:
    layout = {
        "sections": [
            {"name": "UPPER", "rows": [{"label": "R01", "first_index": "3", "numbers": [1, 2]}]},
            {"name": "FLOOR", "rows": [{"label": "R01", "first_index": "0", "numbers": [7, 8, 9]}]},
        ]
    }
    assert seat_order(layout) == [
        "FLOOR-R01-007",
        "FLOOR-R01-008",
        "FLOOR-R01-009",
        "UPPER-R01-001",
        "UPPER-R01-002",
    ]


def test_only_free_seats_in_layout_order_up_to_the_number_wanted() -> None:
    statuses = [H, A, S, A, A, H, H, H, S, A]  # ten seats: the last byte half used
    seats = [f"s{i}" for i in range(len(statuses))]
    assert available(_read(statuses), seats, 100) == ["s1", "s3", "s4", "s9"]
    assert available(_read(statuses), seats, 2) == ["s1", "s3"]
    assert available(_read([S] * 7), seats[:7], 5) == []


def test_a_fresh_5000_seat_map_gives_its_front() -> None:
    seats = [f"s{i}" for i in range(5000)]
    assert available(_read([A] * 5000), seats, 300) == seats[:300]
    assert len(available(_read([A] * 5000), seats, 10_000)) == 5000
