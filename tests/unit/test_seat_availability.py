"""Packed availability: two bits a seat, changed in O(seats moved)."""

from __future__ import annotations

import random

import pytest

from groundwork_catalog import availability
from groundwork_catalog.availability import Moved, parse_version
from groundwork_catalog.domain import SeatStatus
from groundwork_shared import positions
from groundwork_shared.errors import InvalidArgument

A, H, S = SeatStatus.AVAILABLE, SeatStatus.HELD, SeatStatus.SOLD


def test_pack_and_unpack_are_inverse_and_take_two_bits_a_seat() -> None:
    rng = random.Random(7)
    statuses = [rng.choice([A, H, S]) for _ in range(5001)]
    packed = availability.pack(statuses)
    assert len(packed) == availability.packed_size(5001) == 1251
    assert availability.unpack(packed, 5001) == statuses
    # The documented layout: seat i in byte i // 4 at bit 2 * (i % 4).
    assert availability.pack([H, S, A, S]) == bytes([0b10_00_10_01])


def test_apply_changes_only_the_moved_seats_and_counts_them() -> None:
    before = availability.pack([A] * 10)
    after, deltas = availability.apply(before, [Moved(3, A), Moved(9, A)], H)
    assert availability.unpack(after, 10) == [A, A, A, H, A, A, A, A, A, H]
    assert deltas == {A: -2, H: 2, S: 0}
    sold, deltas = availability.apply(after, [Moved(3, H)], S)
    assert availability.state_of(sold, 3) == S and availability.state_of(sold, 9) == H
    assert deltas == {A: 0, H: -1, S: 1}


def test_versions_order_as_stream_ids_and_bad_ones_are_refused() -> None:
    assert parse_version("1700000000000-2") < parse_version("1700000000000-10")
    assert parse_version("999-9") < parse_version("1000-0")
    assert positions.text(parse_version("5-1")) == "5-1"
    for bad in ("", "5", "a-1", "5-", "-1", "1-2-3", "9" * 40 + "-1"):
        with pytest.raises(InvalidArgument):
            parse_version(bad)
