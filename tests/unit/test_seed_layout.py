from __future__ import annotations

from collections import Counter

import pytest

from groundwork_catalog.seed import seat_layout


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


def test_a_venue_is_split_into_priced_sections_of_forty_seat_rows() -> None:
    seats = seat_layout(4801)
    assert Counter(s.section for s in seats) == {"FLOOR": 960, "LOWER": 1920, "UPPER": 1921}
    assert {s.section: s.price_cents for s in seats} == {
        "FLOOR": 9900,
        "LOWER": 6900,
        "UPPER": 3900,
    }
    rows = Counter((s.section, s.row_label) for s in seats)
    assert max(rows.values()) == 40 and rows[("UPPER", "R49")] == 1  # the last row's one seat
    assert len({s.seat_id for s in seats}) == len(seats) == 4801  # every seat its own id
