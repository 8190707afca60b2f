"""Every request's strings are checked once, in the common interceptor: NUL and
invalid UTF-8 are refused with the field named."""

from __future__ import annotations

from groundwork.catalog.v1 import catalog_pb2
from groundwork_shared.errors import FieldViolation
from groundwork_shared.validation import NUL, string_violations, undecodable_field


def test_nul_is_found_in_scalars_repeated_fields_maps_and_nested_messages() -> None:
    request = catalog_pb2.CreateEventRequest(
        venue_id="v\x00", name="fine", section_prices={"Stalls\x00": 100, "Circle": 50}
    )
    assert string_violations(request) == [
        FieldViolation("venue_id", NUL),
        FieldViolation("section_prices[key]", NUL),
    ]
    seats = catalog_pb2.SeatMap(
        event_id="e", seats=[catalog_pb2.Seat(seat_id="A-1"), catalog_pb2.Seat(row="B\x00")]
    )
    assert string_violations(seats) == [FieldViolation("seats[1].row", NUL)]
    assert string_violations(catalog_pb2.ListEventsRequest(city="Berlin")) == []


def test_the_field_with_invalid_utf8_is_named_from_the_wire_bytes() -> None:
    good = catalog_pb2.GetEventRequest(event_id="XXXX").SerializeToString()
    bad = good.replace(b"XXXX", b"\xff\xfeXX")
    assert undecodable_field(catalog_pb2.GetEventRequest.DESCRIPTOR, bad) == "event_id"
    nested = catalog_pb2.SeatMap(
        event_id="e", seats=[catalog_pb2.Seat(seat_id="A-1"), catalog_pb2.Seat(row="YYYY")]
    ).SerializeToString()
    broken = nested.replace(b"YYYY", b"Y\xc3(Y")
    assert undecodable_field(catalog_pb2.SeatMap.DESCRIPTOR, broken) == "seats.row"
    # Bytes broken some other way (a truncated length) name no field.
    assert undecodable_field(catalog_pb2.GetEventRequest.DESCRIPTOR, b"\x0a\x05ab") is None
