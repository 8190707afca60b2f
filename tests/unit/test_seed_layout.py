from __future__ import annotations

import pytest

from groundwork_catalog.seed import EVENT_COUNT, VENUES, seat_layout


@pytest.mark.parametrize("capacity", [1000, 1234, 4800, 5000])
def test_layout_has_exactly_capacity_unique_sorted_seats(capacity: int) -> None:
    seats = seat_layout(capacity)
    ids = [s.seat_id for s in seats]
    assert len(ids) == capacity == len(set(ids))
    # Within a section, seat ids sort in row-then-number order (the seat map's order).
    for section in {s.section for s in seats}:
        in_section = [s for s in seats if s.section == section]
        assert sorted(in_section, key=lambda s: s.seat_id) == sorted(
            in_section, key=lambda s: (s.row_label, s.number)
        )


def test_sample_is_realistic() -> None:
    assert EVENT_COUNT >= 20
    assert len({city for city, _, _ in VENUES}) >= 5
    assert all(1000 <= capacity <= 5000 for _, _, capacity in VENUES)
