from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from groundwork_catalog.domain import (
    DEFAULT_PAGE_SIZE,
    MAX_PRICE_CENTS,
    Cursor,
    EventFilter,
    list_events_query,
    new_event,
    parse_event_id,
)
from groundwork_shared.errors import InvalidArgument

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def query(**overrides: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        city="", starts_after=None, starts_before=None, page_size=0, page_token="", now=NOW
    )
    args.update(overrides)
    return list_events_query(**args)  # type: ignore[arg-type]


def test_defaults_start_now_with_default_page_size() -> None:
    q = query()
    assert q.page_size == DEFAULT_PAGE_SIZE
    assert q.event_filter == EventFilter(None, None, None)
    assert q.lower_bound == NOW
    assert q.after is None


def test_a_cursor_from_an_earlier_now_stays_valid() -> None:
    first = query()
    cursor = Cursor(NOW + timedelta(days=1), uuid.uuid4())
    later = query(page_token=cursor.encode(first.event_filter), now=NOW + timedelta(minutes=5))
    assert later.after == cursor  # the next page starts where the first one ended
    assert later.lower_bound == NOW + timedelta(minutes=5)


def test_city_is_trimmed_and_empty_means_all() -> None:
    assert query(city="  Berlin ").event_filter.city == "Berlin"
    assert query(city="   ").event_filter.city is None


@pytest.mark.parametrize("size", [-1, 101, 10_000])
def test_page_size_out_of_range_is_rejected(size: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        query(page_size=size)
    assert [v.field for v in info.value.violations] == ["page_size"]


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as info:
        query(page_size=500, city="x" * 101, starts_before=NOW - timedelta(days=1))
    assert {v.field for v in info.value.violations} == {"page_size", "city", "starts_before"}


def test_empty_date_range_is_rejected() -> None:
    with pytest.raises(InvalidArgument):
        query(starts_after=NOW, starts_before=NOW)


def test_cursor_round_trips_for_the_same_filter() -> None:
    flt = EventFilter("Lisbon", None, None)
    cursor = Cursor(NOW + timedelta(days=3), uuid.uuid4())
    assert Cursor.decode(cursor.encode(flt), flt) == cursor
    token = cursor.encode(flt)
    q = query(city="Lisbon", page_token=token)
    assert q.after == cursor


def test_cursor_is_bound_to_its_filters() -> None:
    token = Cursor(NOW, uuid.uuid4()).encode(EventFilter("Lisbon", None, None))
    with pytest.raises(InvalidArgument, match="different filters"):
        query(city="Berlin", page_token=token)


@pytest.mark.parametrize("token", ["garbage", "e30", "!!!", "eyJ0IjogMX0", "a" * 5])
def test_malformed_cursor_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        query(page_token=token)


def test_event_id_must_be_a_uuid() -> None:
    event_id = uuid.uuid4()
    assert parse_event_id(str(event_id)) == event_id
    for bad in ["", "42", "not-a-uuid"]:
        with pytest.raises(InvalidArgument, match="event_id"):
            parse_event_id(bad)


def test_prices_are_bounded_per_section() -> None:
    def create(prices: dict[str, int]) -> object:
        return new_event(
            venue_id=str(uuid.uuid4()),
            name="Bounded",
            starts_at=NOW + timedelta(days=1),
            currency="EUR",
            section_prices=prices,
            now=NOW,
        )

    assert create({"FLOOR": MAX_PRICE_CENTS, "UPPER": 0})
    with pytest.raises(InvalidArgument) as info:
        create({"FLOOR": 9223372036854775807, "LOWER": 100, "UPPER": -1})
    assert [v.field for v in info.value.violations] == [
        "section_prices['FLOOR']",
        "section_prices['UPPER']",
    ]
